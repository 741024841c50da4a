/**
 * The members a transport talks to, and which one each call or stream goes to: the order of
 * `../member-choice.ts` (one that answered, before one not heard from, before one that went silent;
 * random within a rank), shared with the etcd3 adapter. One memory per transport, so keep-alives,
 * watches and calls learn from each other.
 */
import { MemberChoice } from '../member-choice.js';
import type { Member } from '../port.js';
import { Channel, type ChannelOptions } from './channel.js';

/** A member and its connection. */
export interface H2Member extends Member {
  readonly channel: Channel;
}

export class Members {
  readonly all: readonly H2Member[];
  readonly #choice: MemberChoice<Member>;

  constructor(endpoints: readonly string[], channel: Omit<ChannelOptions, 'endpoint'>, silenceMemoryMs: number) {
    this.all = endpoints.map((endpoint) => ({ endpoint, channel: new Channel({ ...channel, endpoint }) }));
    this.#choice = new MemberChoice(silenceMemoryMs);
  }

  /** The member to use next (see the file comment), other than `avoid` when there is another. */
  pick(avoid?: Member): H2Member {
    if (this.all.length === 1) return this.all[0]!;
    return (this.#choice.order(this.all, avoid)[0] as H2Member | undefined) ?? this.all[0]!;
  }

  /** Every member, in the order to try them (see the file comment). */
  ordered(): H2Member[] {
    return this.#choice.order(this.all) as H2Member[];
  }

  /** `member` answered a call, or a request sent on a stream. */
  answered(member: Member): void {
    this.#choice.answered(member);
  }

  /** Remembers `member` as silent for a while, and tells the listeners. */
  markSilent(member: Member): void {
    if (this.all.includes(member as H2Member)) this.#choice.silent(member);
  }

  onSilent(listener: (member: Member) => void): () => void {
    return this.#choice.onSilent(listener);
  }

  close(): void {
    for (const m of this.all) m.channel.close(true);
  }
}
