/**
 * Validation of `trainer_state.json` when a checkpoint is read. The file is JSON on disk that a user, a crash
 * or another tool may have changed; without this, a wrong type surfaced deep in the resume as
 * "Cannot read properties of undefined (reading 'name')". Every field is checked here, and an error names the
 * file and the field.
 */
import * as v from 'valibot';

const count = v.pipe(v.number(), v.integer(), v.minValue(0));
const finite = v.pipe(v.number(), v.finite());
const positive = v.pipe(v.number(), v.finite(), v.gtValue(0));
const u32 = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(2 ** 32 - 1));

/** The fields of a version-1 `trainer_state.json` (see `TrainerCheckpointState`); extra keys are ignored. */
export const trainerStateSchema = v.object({
  format: v.literal('relign-trainer-state'),
  version: v.literal(1),
  step: count,
  policyVersion: count,
  samplesSeen: count,
  numPrompts: count,
  seed: v.union([finite, v.string()]),
  rng: v.object({
    algorithm: v.literal('xoshiro128**'),
    version: v.literal(1),
    s: v.tuple([u32, u32, u32, u32]),
  }),
  kl: v.variant('kind', [
    v.object({ kind: v.literal('fixed'), value: v.pipe(finite, v.minValue(0)) }),
    v.object({
      kind: v.literal('adaptive'),
      value: v.pipe(finite, v.minValue(0)),
      target: positive,
      horizon: positive,
    }),
  ]),
  plugin: v.object({ name: v.pipe(v.string(), v.nonEmpty()), config: v.record(v.string(), v.unknown()) }),
  rewardStats: v.object({ count, mean: finite, m2: v.pipe(finite, v.minValue(0)) }),
  skippedTotal: count,
  referenceFingerprint: v.string(),
});

/**
 * Checks a parsed `trainer_state.json` (from `file`); returns it typed.
 * @throws Error naming the file, the field (dot path) and what was expected, with the value found.
 */
export function validateTrainerState(value: unknown, file: string): v.InferOutput<typeof trainerStateSchema> {
  const r = v.safeParse(trainerStateSchema, value);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const field = v.getDotPath(issue) ?? '(the top level)';
  throw new Error(
    `Trainer: ${file}: field '${field}' is invalid (${issue.message}). The file is damaged or was not written ` +
      'by relign; resume from another checkpoint (step-N directory) or start a new run.',
  );
}
