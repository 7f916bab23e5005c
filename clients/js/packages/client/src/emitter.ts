// A minimal typed event emitter (no dependency): on() returns an unsubscribe
// function; a listener that throws does not stop the others (its error is
// reported with reportError() where it exists, else console.error).

export type Listener = (...args: any[]) => void;

export class Emitter<Events extends { [K in keyof Events]: Listener }> {
  private listeners = new Map<keyof Events, Set<Listener>>();

  on<K extends keyof Events>(name: K, fn: Events[K]): () => void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(fn);
    return () => {
      set!.delete(fn);
    };
  }

  once<K extends keyof Events>(name: K, fn: Events[K]): () => void {
    const off = this.on(name, ((...args: unknown[]) => {
      off();
      (fn as Listener)(...args);
    }) as Events[K]);
    return off;
  }

  /** Calls every listener of `name`; returns how many there were. */
  protected emit<K extends keyof Events>(name: K, ...args: Parameters<Events[K]>): number {
    const set = this.listeners.get(name);
    if (!set || set.size === 0) return 0;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        // A faulty listener must not break the client's state machine.
        reportListenerError(e);
      }
    }
    return set.size;
  }
}

export function reportListenerError(e: unknown): void {
  const g = globalThis as { reportError?: (e: unknown) => void };
  if (typeof g.reportError === 'function') g.reportError(e);
  else console.error('herald: a listener threw', e);
}
