import { describe, expect, it } from 'vitest';
import { LinkedList, type ListNode } from '../../src/core/linked-list.js';

interface Item extends ListNode<Item> {
  readonly id: string;
}

const item = (id: string): Item => ({ id, prev: undefined, next: undefined, list: undefined });

/** The ids front to back, and checked back to front through `prev`, so both directions agree. */
function ids(list: LinkedList<Item>): string[] {
  const forward = [...list].map((node) => node.id);
  const backward: string[] = [];
  for (let node = list.last; node; node = node.prev) backward.unshift(node.id);
  expect(backward).toEqual(forward);
  expect(list.size).toBe(forward.length);
  expect(list.first?.id).toBe(forward[0]);
  expect(list.last?.id).toBe(forward[forward.length - 1]);
  return forward;
}

function listOf(...names: string[]): { list: LinkedList<Item>; nodes: Record<string, Item> } {
  const list = new LinkedList<Item>();
  const nodes: Record<string, Item> = {};
  for (const name of names) {
    nodes[name] = item(name);
    list.push(nodes[name]);
  }
  return { list, nodes };
}

describe('LinkedList', () => {
  it('starts empty', () => {
    const list = new LinkedList<Item>();
    expect(list.size).toBe(0);
    expect(list.first).toBeUndefined();
    expect(list.last).toBeUndefined();
    expect([...list]).toEqual([]);
    expect(list.shift()).toBeUndefined();
  });

  it('push then shift is first in, first out', () => {
    const { list } = listOf('a', 'b', 'c');
    expect(ids(list)).toEqual(['a', 'b', 'c']);
    expect(list.shift()?.id).toBe('a');
    expect(ids(list)).toEqual(['b', 'c']);
    expect(list.shift()?.id).toBe('b');
    expect(list.shift()?.id).toBe('c');
    expect(list.shift()).toBeUndefined();
    expect(ids(list)).toEqual([]);
  });

  it('unshift puts a node at the front (a retry goes back to the head of its queue)', () => {
    const { list } = listOf('a', 'b');
    list.unshift(item('r'));
    expect(ids(list)).toEqual(['r', 'a', 'b']);
    const empty = new LinkedList<Item>();
    empty.unshift(item('x'));
    expect(ids(empty)).toEqual(['x']);
  });

  it.each([
    { before: 'a', expected: ['n', 'a', 'b', 'c'] },
    { before: 'b', expected: ['a', 'n', 'b', 'c'] },
    { before: 'c', expected: ['a', 'b', 'n', 'c'] },
  ])('insertBefore($before)', ({ before, expected }) => {
    const { list, nodes } = listOf('a', 'b', 'c');
    list.insertBefore(item('n'), nodes[before] as Item);
    expect(ids(list)).toEqual(expected);
  });

  it.each([
    { remove: ['a'], expected: ['b', 'c', 'd'] },
    { remove: ['b'], expected: ['a', 'c', 'd'] },
    { remove: ['d'], expected: ['a', 'b', 'c'] },
    { remove: ['b', 'c'], expected: ['a', 'd'] },
    { remove: ['a', 'd'], expected: ['b', 'c'] },
    { remove: ['d', 'c', 'b', 'a'], expected: [] },
  ])('remove($remove) in O(1) from anywhere', ({ remove, expected }) => {
    const { list, nodes } = listOf('a', 'b', 'c', 'd');
    for (const name of remove) {
      const node = nodes[name] as Item;
      expect(list.remove(node)).toBe(true);
      expect([node.prev, node.next, node.list]).toEqual([undefined, undefined, undefined]);
    }
    expect(ids(list)).toEqual(expected);
  });

  it('remove of a node that is not in this list returns false and changes nothing', () => {
    const { list, nodes } = listOf('a', 'b');
    const other = listOf('x');
    const x = other.nodes.x as Item;
    expect(list.remove(item('stranger'))).toBe(false);
    expect(list.remove(x)).toBe(false);
    expect(ids(list)).toEqual(['a', 'b']);
    expect(ids(other.list)).toEqual(['x']);
    expect(x.list).toBe(other.list);
    expect(list.remove(nodes.a as Item)).toBe(true);
    expect(list.remove(nodes.a as Item)).toBe(false); // twice
    expect(ids(list)).toEqual(['b']);
  });

  it('a node is in one list at a time; once removed it may join another', () => {
    const { list, nodes } = listOf('a', 'b');
    const other = new LinkedList<Item>();
    const a = nodes.a as Item;
    expect(() => other.push(a)).toThrow(new Error('node is already in a list'));
    expect(() => other.unshift(a)).toThrow(new Error('node is already in a list'));
    expect(() => list.push(a)).toThrow(new Error('node is already in a list'));
    expect(() => list.insertBefore(a, nodes.b as Item)).toThrow(new Error('node is already in a list'));
    expect(() => list.insertBefore(nodes.b as Item, a)).toThrow(new Error('node is already in a list'));
    expect(ids(list)).toEqual(['a', 'b']);
    list.remove(a);
    other.push(a);
    expect(a.list).toBe(other);
    expect(ids(other)).toEqual(['a']);
    expect(ids(list)).toEqual(['b']);
  });

  it('insertBefore a node of another list throws and changes nothing', () => {
    const { list } = listOf('a');
    const other = listOf('x');
    const n = item('n');
    expect(() => list.insertBefore(n, other.nodes.x as Item)).toThrow(new Error('insertBefore: reference node is not in this list'));
    expect(n.list).toBeUndefined();
    expect(ids(list)).toEqual(['a']);
    expect(ids(other.list)).toEqual(['x']);
  });

  it('a mixed sequence keeps both directions consistent', () => {
    const list = new LinkedList<Item>();
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map(item) as [Item, Item, Item, Item, Item];
    list.push(a);
    list.push(b);
    list.unshift(c); // c a b
    list.insertBefore(d, b); // c a d b
    list.remove(a); // c d b
    list.push(e); // c d b e
    expect(list.shift()).toBe(c); // d b e
    list.insertBefore(a, d); // a d b e
    expect(ids(list)).toEqual(['a', 'd', 'b', 'e']);
  });
});
