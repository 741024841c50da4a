/**
 * Which etcd member a call or a stream goes to, from what the client has learnt of each: one that
 * answered, before one not heard from, before one that went silent. Transport-neutral (a member is
 * whatever object an adapter uses for one), so every adapter chooses the same way.
 *
 * A member *answers* when a call returns (even with an error etcd chose to send) or a stream delivers
 * a message; it goes *silent* when a call gets no answer in time, the connection fails, it says it
 * has no leader, or a stream stalls. Every member that went silent is tried after the others for
 * `memoryMs` (unless it answers meanwhile), the one silent longest first: a client partitioned from
 * two members of three does not alternate between them. Among members of one rank the order is
 * random, so clients spread over the members that work.
 */

/** When a member last answered and last went silent, on the `performance.now()` clock (0: never). */
interface Standing {
  answeredAt: number;
  silentAt: number;
}

/** How long a member that went silent is tried after the others. */
export const silenceMemoryMs = 10_000;

/** What one client learnt of its members. */
export class MemberChoice<M> {
  readonly #standings = new Map<M, Standing>();
  readonly #memoryMs: number;
  readonly #listeners = new Set<(member: M) => void>();

  constructor(memoryMs = silenceMemoryMs) {
    this.#memoryMs = memoryMs;
  }

  /** `member` answered now. */
  answered(member: M): void {
    this.#standing(member).answeredAt = performance.now();
  }

  /** `member` went silent now; tells every listener (see {@link onSilent}). */
  silent(member: M): void {
    this.#standing(member).silentAt = performance.now();
    for (const listener of this.#listeners) listener(member);
  }

  /** Calls `listener` whenever a member goes silent (a stream elsewhere may want to check its own). Returns the way to stop. */
  onSilent(listener: (member: M) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Whether `member` went silent within the memory and has not answered since. */
  isSilent(member: M, now = performance.now()): boolean {
    return this.#rank(member, now) === 2;
  }

  /**
   * `members` in the order to try them: those that answered (more recently than they went silent), in
   * random order; then those not heard from (or whose silence is older than the memory); then the
   * silent ones, silent longest first; `avoid` last.
   */
  order(members: readonly M[], avoid?: M): M[] {
    const now = performance.now();
    const ranked = members.map((member) => ({
      member,
      rank: member === avoid ? 3 : this.#rank(member, now),
      silentAt: this.#standings.get(member)?.silentAt ?? 0,
      tie: Math.random(),
    }));
    ranked.sort((a, b) => a.rank - b.rank || (a.rank === 2 ? a.silentAt - b.silentAt : a.tie - b.tie));
    return ranked.map((r) => r.member);
  }

  /** 0 answered, 1 not heard from (or silent long ago), 2 silent. */
  #rank(member: M, now: number): number {
    const standing = this.#standings.get(member);
    if (!standing) return 1;
    if (standing.silentAt > standing.answeredAt) return now - standing.silentAt < this.#memoryMs ? 2 : 1;
    return standing.answeredAt > 0 ? 0 : 1;
  }

  #standing(member: M): Standing {
    let standing = this.#standings.get(member);
    if (!standing) this.#standings.set(member, (standing = { answeredAt: 0, silentAt: 0 }));
    return standing;
  }
}
