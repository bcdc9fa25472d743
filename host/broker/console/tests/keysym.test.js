import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keysymFor, keysymForEvent, keysymForChar, pointerButton, wheelButton, scalePoint } from '../src/keysym.js';

test('printable Latin-1 characters are their own keysym', () => {
  assert.equal(keysymFor('a', 'KeyA'), 0x61);
  assert.equal(keysymFor('A', 'KeyA'), 0x41);
  assert.equal(keysymFor(' ', 'Space'), 0x20);
  assert.equal(keysymFor('~', 'Backquote'), 0x7e);
  assert.equal(keysymFor('é', 'Digit2'), 0xe9);
  assert.equal(keysymFor('ÿ', 'KeyY'), 0xff);
  assert.equal(keysymFor('\u00a0', 'Space'), 0xa0);
});

test('other characters are 0x01000000 + code point', () => {
  assert.equal(keysymFor('€', 'KeyE'), 0x010020ac);
  assert.equal(keysymFor('ł', 'KeyL'), 0x01000142);
  assert.equal(keysymFor('😀', ''), 0x0101f600);
  assert.equal(keysymForChar('\u0007'), null);
  assert.equal(keysymForChar('\u0085'), null);
});

test('named keys', () => {
  const table = {
    Enter: 0xff0d,
    Tab: 0xff09,
    Backspace: 0xff08,
    Escape: 0xff1b,
    ArrowLeft: 0xff51,
    ArrowUp: 0xff52,
    ArrowRight: 0xff53,
    ArrowDown: 0xff54,
    Home: 0xff50,
    End: 0xff57,
    PageUp: 0xff55,
    PageDown: 0xff56,
    Delete: 0xffff,
    Insert: 0xff63,
    F1: 0xffbe,
    F12: 0xffc9,
    CapsLock: 0xffe5,
  };
  for (const [key, sym] of Object.entries(table)) assert.equal(keysymFor(key, ''), sym, key);
  for (let i = 1; i <= 12; i++) assert.equal(keysymFor(`F${i}`, `F${i}`), 0xffbe + i - 1);
});

test('modifiers, left and right', () => {
  assert.equal(keysymFor('Shift', 'ShiftLeft'), 0xffe1);
  assert.equal(keysymFor('Shift', 'ShiftRight'), 0xffe2);
  assert.equal(keysymFor('Control', 'ControlLeft'), 0xffe3);
  assert.equal(keysymFor('Control', 'ControlRight'), 0xffe4);
  assert.equal(keysymFor('Alt', 'AltLeft'), 0xffe9);
  assert.equal(keysymFor('Alt', 'AltRight'), 0xffea);
  assert.equal(keysymFor('AltGraph', 'AltRight'), 0xfe03);
  assert.equal(keysymFor('Meta', 'MetaLeft'), 0xffeb);
  assert.equal(keysymFor('Meta', 'MetaRight'), 0xffec);
  assert.equal(keysymFor('Shift', ''), 0xffe1);
  assert.equal(keysymFor('Enter', 'NumpadEnter'), 0xff8d);
});

test('nothing for dead keys, composition and unknown keys', () => {
  assert.equal(keysymFor('Dead', 'BracketLeft'), null);
  assert.equal(keysymFor('Unidentified', ''), null);
  assert.equal(keysymFor('', ''), null);
  assert.equal(keysymForEvent({ key: 'a', code: 'KeyA', isComposing: true }), null);
  assert.equal(keysymForEvent({ key: 'a', code: 'KeyA', isComposing: false }), 0x61);
});

test('buttons and wheel', () => {
  assert.equal(pointerButton(0), 1);
  assert.equal(pointerButton(1), 2);
  assert.equal(pointerButton(2), 3);
  assert.equal(pointerButton(3), null);
  assert.equal(wheelButton(-120), 4);
  assert.equal(wheelButton(53), 5);
  assert.equal(wheelButton(0), null);
});

test('pointer coordinates scale from the displayed canvas to the screen', () => {
  const rect = { left: 100, top: 50, width: 960, height: 540 };
  assert.deepEqual(scalePoint(100, 50, rect, 1920, 1080), { x: 0, y: 0 });
  assert.deepEqual(scalePoint(580, 320, rect, 1920, 1080), { x: 960, y: 540 });
  assert.deepEqual(scalePoint(1060, 590, rect, 1920, 1080), { x: 1919, y: 1079 });
  assert.deepEqual(scalePoint(0, 0, rect, 1920, 1080), { x: 0, y: 0 });
  assert.equal(scalePoint(1, 1, { left: 0, top: 0, width: 0, height: 0 }, 10, 10), null);
});
