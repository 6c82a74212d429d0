// The engine's public surface: createSandbox and the contract types.
export { createSandbox, SANDBOX_UID, SANDBOX_GID } from './sandbox.js';
export * from './types.js';
