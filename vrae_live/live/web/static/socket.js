// The WebSocket to the daemon: the token from the URL's #fragment, reconnecting after a drop.

export function connect({ onHello, onState, onApplied, onClose }) {
  const token = decodeURIComponent(location.hash.slice(1));
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}/ws?token=${encodeURIComponent(token)}`;
  let socket = null, opened = false, seq = 0;

  function open() {
    socket = new WebSocket(url);
    socket.onopen = () => { opened = true; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "hello") onHello(message);
      else if (message.type === "state") onState(message);
      else if (message.type === "applied") onApplied(message.seq);
    };
    socket.onclose = () => {
      // Refused before it opened: a wrong token or origin; retrying will not help.
      onClose(opened ? "closed" : "refused");
      if (opened) { opened = false; setTimeout(open, 1000); }
    };
  }
  open();

  return {
    send(name, value) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return -1;
      seq += 1;
      socket.send(JSON.stringify(value === undefined ? { set: name, seq } : { set: name, value, seq }));
      return seq;
    },
  };
}
