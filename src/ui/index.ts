/**
 * `leasehold/ui`: the live page of everything under a prefix, as a request handler for a service's
 * admin port (`createUiHandler`); `leasehold ui` serves the same on its own. See docs/listing.md.
 */
export { createUiHandler, type UiHandler, type UiOptions } from './handler.js';
export type { FeedState } from './feed.js';
export type { LiveView, LivePrimitive, LiveContender, Handoff, Since } from './live-model.js';
