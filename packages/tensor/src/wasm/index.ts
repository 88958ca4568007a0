// Placeholder: filled in by the wasm kernels work (UnsortedSegmentSum, BatchMatMul).
export function registerWasmKernels(): void {}
