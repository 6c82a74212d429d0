// One Redis subscriber connection, made at its first use, whose channels each have one listener:
// the API's for its live sessions' events, a worker's for its live jobs' stdin. (A worker's
// cancels keep a connection of their own: a client's typing must not fill the output buffer Redis
// bounds on the connection that carries them.)
import type { Redis } from 'ioredis';
import { createRedis } from './connection.js';

export class ChannelSubscriber {
  private connection: Redis | undefined;
  private readonly listeners = new Map<string, (message: string) => void>();

  constructor(
    private readonly redisUrl: string,
    private readonly connectionName: string,
  ) {}

  /** Resolves once Redis confirmed the subscription: every message published after is heard. */
  async listen(channel: string, onMessage: (message: string) => void): Promise<void> {
    if (!this.connection) {
      this.connection = createRedis(this.redisUrl, 'blocking', this.connectionName);
      this.connection.on('message', (heardOn: string, message: string) => this.listeners.get(heardOn)?.(message));
    }
    this.listeners.set(channel, onMessage);
    try {
      await this.connection.subscribe(channel);
    } catch (error) {
      this.listeners.delete(channel);
      throw error;
    }
  }

  /** Never throws: a channel left subscribed on a connection that failed is heard by no one. */
  async unlisten(channel: string): Promise<void> {
    if (this.listeners.delete(channel)) await this.connection?.unsubscribe(channel).catch(() => undefined);
  }

  close(): void {
    this.listeners.clear();
    this.connection?.disconnect();
  }
}
