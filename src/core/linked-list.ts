/**
 * Fields a value carries to live in a `LinkedList`. Each value is in at most one list at a time;
 * `list` says which, so removal from the middle is O(1) and never needs a search.
 */
export interface ListNode<T> {
  prev: T | undefined;
  next: T | undefined;
  /** The list the node is in (a LinkedList), or undefined. */
  list: object | undefined;
}

/**
 * An intrusive doubly linked list: FIFO push/shift at both ends and O(1) removal of any member.
 * Queued requests leave their queue at once when the client disconnects; this is why a plain
 * array does not do.
 */
export class LinkedList<T extends ListNode<T>> {
  #head: T | undefined;
  #tail: T | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get first(): T | undefined {
    return this.#head;
  }

  get last(): T | undefined {
    return this.#tail;
  }

  /** Appends `node`; it must not be in a list. */
  push(node: T): void {
    this.#assertFree(node);
    node.list = this;
    node.prev = this.#tail;
    node.next = undefined;
    if (this.#tail) this.#tail.next = node;
    else this.#head = node;
    this.#tail = node;
    this.#size++;
  }

  /** Prepends `node`; it must not be in a list. */
  unshift(node: T): void {
    this.#assertFree(node);
    node.list = this;
    node.next = this.#head;
    node.prev = undefined;
    if (this.#head) this.#head.prev = node;
    else this.#tail = node;
    this.#head = node;
    this.#size++;
  }

  /** Inserts `node` right before `before`, which must be in this list. */
  insertBefore(node: T, before: T): void {
    if (before.list !== this) throw new Error('insertBefore: reference node is not in this list');
    if (before === this.#head) return this.unshift(node);
    this.#assertFree(node);
    node.list = this;
    node.prev = before.prev;
    node.next = before;
    (before.prev as T).next = node;
    before.prev = node;
    this.#size++;
  }

  /** Removes and returns the first node. */
  shift(): T | undefined {
    const node = this.#head;
    if (node) this.remove(node);
    return node;
  }

  /** Removes `node` if it is in this list; returns whether it was. */
  remove(node: T): boolean {
    if (node.list !== this) return false;
    if (node.prev) node.prev.next = node.next;
    else this.#head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.#tail = node.prev;
    node.prev = undefined;
    node.next = undefined;
    node.list = undefined;
    this.#size--;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let node = this.#head; node; node = node.next) yield node;
  }

  #assertFree(node: T): void {
    if (node.list !== undefined) throw new Error('node is already in a list');
  }
}
