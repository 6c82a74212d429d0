// The shape of the npm `piston-client` package (untyped), as its readme documents it.
declare module 'piston-client' {
  interface PistonClientOptions {
    server?: string;
  }
  interface ExecuteConfig {
    language?: string;
    version?: string;
    files?: { name?: string; content: string; encoding?: string }[];
    stdin?: string;
    args?: string[];
    compileTimeout?: number;
    runTimeout?: number;
    compileMemoryLimit?: number;
    runMemoryLimit?: number;
  }
  interface PistonClient {
    runtimes(): Promise<unknown>;
    execute(language: string, code: string, config?: ExecuteConfig): Promise<unknown>;
    execute(config: ExecuteConfig): Promise<unknown>;
  }
  export function piston(options?: PistonClientOptions): PistonClient;
  export default piston;
}
