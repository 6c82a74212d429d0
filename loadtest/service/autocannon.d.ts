// The part of the npm `autocannon` package (untyped) the load test uses, as its readme and
// lib/run.js define it.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Request {
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string;
      /** Called before each request is built; returns the request to send (lib/httpRequestBuilder.js). */
      setupRequest?: (request: Request, context: Record<string, unknown>) => Request;
      /** Called with each response to this request, before the instance's 'response' event. */
      onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void;
    }
    interface Options {
      url: string;
      connections?: number;
      amount?: number;
      duration?: number;
      /** Seconds before a request times out. */
      timeout?: number;
      connectionRate?: number;
      overallRate?: number;
      ignoreCoordinatedOmission?: boolean;
      requests?: Request[];
    }
    interface Result {
      errors: number;
      timeouts: number;
      non2xx: number;
    }
    interface Instance extends EventEmitter {
      stop(): void;
    }
  }

  function autocannon(options: autocannon.Options, callback: (error: Error | null, result: autocannon.Result) => void): autocannon.Instance;
  export default autocannon;
}
