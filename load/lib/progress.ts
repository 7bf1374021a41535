/**
 * The progress line of a running scenario. On a terminal it is one line rewritten in place (four
 * times a second); elsewhere (CI logs, a pipe) a plain line every few seconds, so logs stay short.
 * Written to stderr: stdout carries only the result tables.
 */
export interface Progress {
  /** Sets the text shown (cheap: rendering happens on the timer). */
  set(text: string): void;
  /** Prints a line of its own above the progress line. */
  log(line: string): void;
  /** Renders the last text once more and ends the line. */
  stop(): void;
}

export function createProgress(label: string, options: { everyMs?: number; stream?: NodeJS.WriteStream } = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const started = performance.now();
  let text = '';
  let lastPlain = 0;
  let shown = false;
  const line = (): string => `  ${label} ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  ${text}`;
  const render = (): void => {
    if (text === '') return;
    if (tty) {
      const width = stream.columns ?? 120;
      stream.write(`\r\x1b[2K${line().slice(0, width - 1)}`);
      shown = true;
    } else if (performance.now() - lastPlain >= (options.everyMs ?? 5000)) {
      stream.write(`${line()}\n`);
      lastPlain = performance.now();
    }
  };
  const timer = setInterval(render, tty ? 250 : 1000);
  timer.unref();
  return {
    set(next) {
      text = next;
    },
    log(message) {
      if (tty && shown) stream.write('\r\x1b[2K');
      stream.write(`${message}\n`);
      shown = false;
    },
    stop() {
      clearInterval(timer);
      if (text === '') return;
      if (tty) stream.write(`\r\x1b[2K${line()}\n`);
      else stream.write(`${line()}\n`);
      text = '';
    },
  };
}
