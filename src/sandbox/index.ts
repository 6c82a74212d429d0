// The engine's public surface: createSandbox (and its cgroups' preflight) and the contract types.
export { checkSandboxCgroups, createSandbox, SANDBOX_UID, SANDBOX_GID } from './sandbox.js';
export * from './types.js';
