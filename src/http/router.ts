/**
 * Routing by prefix: the upstream whose prefix is the longest match of a request URL.
 */
import type { Upstream } from '../upstream/upstream.js';

/** Finds the upstream whose prefix is the longest match of a request URL. */
export class Router {
  #upstreams: readonly Upstream[] = [];

  constructor(upstreams: readonly Upstream[]) {
    this.set(upstreams);
  }

  /** Routes to these upstreams from now on (a reload), by their current prefixes. */
  set(upstreams: readonly Upstream[]): void {
    this.#upstreams = [...upstreams].sort((a, b) => b.settings.prefix.length - a.settings.prefix.length);
  }

  /** `/github`, `/github/…` and `/github?…` match prefix `/github`; `/githubx` does not. */
  match(url: string): Upstream | undefined {
    for (const upstream of this.#upstreams) {
      const prefix = upstream.settings.prefix;
      if (!url.startsWith(prefix)) continue;
      const next = url.charCodeAt(prefix.length);
      if (Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */) return upstream;
    }
    return undefined;
  }
}
