/**
 * The members a transport talks to, which one each call or stream goes to, and which one went silent.
 *
 * Each call or stream goes to a member in random order, preferring one other than the member last
 * seen silent (a stream that stalled, a call that timed out, a connection refused) for
 * `silenceMemoryMs`, and other than the one the caller asks to avoid. One memory per transport, so
 * keep-alives, watches and calls learn from each other.
 */
import type { Member } from '../port.js';
import { Channel, type ChannelOptions } from './channel.js';

/** A member and its connection. */
export interface H2Member extends Member {
  readonly channel: Channel;
}

export class Members {
  readonly all: readonly H2Member[];
  readonly #memoryMs: number;
  #silent: { member: Member; until: number } | undefined;

  constructor(endpoints: readonly string[], channel: Omit<ChannelOptions, 'endpoint'>, silenceMemoryMs: number) {
    this.all = endpoints.map((endpoint) => ({ endpoint, channel: new Channel({ ...channel, endpoint }) }));
    this.#memoryMs = silenceMemoryMs;
  }

  /** The member to use next: a random one other than `avoid` and the silent one, when there is one. */
  pick(avoid?: Member): H2Member {
    const all = this.all;
    if (all.length === 1) return all[0]!;
    const silent = this.#silent && this.#silent.until > performance.now() ? this.#silent.member : undefined;
    const good = all.filter((m) => m !== avoid && m !== silent);
    const from = good.length > 0 ? good : all.filter((m) => m !== avoid);
    return from[Math.floor(Math.random() * from.length)] ?? all[0]!;
  }

  /** Remembers `member` as silent for a while. */
  markSilent(member: Member): void {
    if (this.all.includes(member as H2Member)) this.#silent = { member, until: performance.now() + this.#memoryMs };
  }

  close(): void {
    for (const m of this.all) m.channel.close(true);
  }
}
