// The page's WebSocket to the agent: events in (JSON, one per message),
// commands out. It reconnects when the socket drops, waiting a little
// longer each time (up to MAX_DELAY_MS); the agent sends everything a
// window must see again on each new connection, so the page starts over.

/** Longest pause between two connection attempts. */
export const MAX_DELAY_MS = 5000;
const FIRST_DELAY_MS = 250;

/**
 * Connects to /ws of this page's server. `handlers`: onOpen(), onEvent(ev),
 * onClose(refused: boolean). Returns {send(command), stop()}.
 */
export function connect(handlers) {
  let ws = null;
  let delay = FIRST_DELAY_MS;
  let stopped = false;
  let timer = null;

  function open() {
    const url = new URL('/ws', location.href);
    url.protocol = 'ws:';
    let opened = false;
    ws = new WebSocket(url);
    ws.addEventListener('open', () => {
      opened = true;
      delay = FIRST_DELAY_MS;
      handlers.onOpen();
    });
    ws.addEventListener('message', (m) => {
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        return;
      }
      handlers.onEvent(ev);
    });
    ws.addEventListener('close', () => {
      ws = null;
      handlers.onClose(!opened);
      if (stopped) return;
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    });
  }

  open();
  return {
    send(command) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(command));
      return true;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      ws?.close();
    },
  };
}
