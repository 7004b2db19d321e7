/**
 * A poll adapter wrapped so a fault test can see what the poll runner did with it: the cursor each poll started
 * from, the pages it yielded, and a hook that runs after a page was committed (the runner asks for the next page
 * only once the previous one's transaction is done) and before the next page is fetched.
 */
import type { PollAdapter, PollPage } from '../../src/providers/poll-adapter.ts';

export interface ObservedPoll {
  /** The committed cursor the runner handed the adapter. */
  startCursor: unknown;
  pages: PollPage[];
}

export interface ObservedPollAdapter {
  adapter: PollAdapter;
  polls: ObservedPoll[];
  /** Runs after page `n` (1-based, per poll) was committed; the poll waits for it. */
  afterPage: ((page: PollPage, n: number) => void | Promise<void>) | undefined;
}

export function observePollAdapter(inner: PollAdapter): ObservedPollAdapter {
  const observed: ObservedPollAdapter = {
    polls: [],
    afterPage: undefined,
    adapter: {
      contract: inner.contract,
      async *poll(context) {
        const poll: ObservedPoll = { startCursor: structuredClone(context.cursor), pages: [] };
        observed.polls.push(poll);
        for await (const page of inner.poll(context)) {
          poll.pages.push(page);
          yield page;
          await observed.afterPage?.(page, poll.pages.length);
        }
      },
    },
  };
  return observed;
}
