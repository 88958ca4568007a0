import { defineConfig } from 'tsup';
import { packageBuilds } from '../../tsup.shared';

export default defineConfig(packageBuilds());
