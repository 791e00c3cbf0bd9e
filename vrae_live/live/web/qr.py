"""The page's URL as a QR code in the terminal, so a phone opens it with its camera (segno)."""

from __future__ import annotations

import io


def terminal_qr(url: str) -> list[str]:
    """Lines of block characters (two modules a line) that draw ``url``'s QR code; dark on a light border."""
    import segno

    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue().rstrip("\n").split("\n")
