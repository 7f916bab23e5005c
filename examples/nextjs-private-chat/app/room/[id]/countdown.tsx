'use client';
// Time left before the room expires. `expiresAt` is on the servers' clock
// (Herald's event ts + channel_ttl_ms); `serverNow` is the Next.js server's
// Date.now() when it rendered the page. The difference to the browser's
// clock at the first render is applied to every tick, so a visitor whose
// clock is off still sees the right time left. Display only: the room ends
// when Herald sends chat.destroy {reason: "expired"}.
import { useEffect, useRef, useState } from 'react';

function format(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function Countdown({ expiresAt, serverNow }: { expiresAt: number | null; serverNow: number }) {
  const skew = useRef(serverNow - Date.now());
  const [now, setNow] = useState(() => Date.now() + skew.current);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now() + skew.current), 250);
    return () => clearInterval(timer);
  }, []);
  if (expiresAt === null) return null;
  const left = expiresAt - now;
  return (
    <p className="timer" role="timer" aria-label="Time left" data-testid="countdown" data-expires-at={expiresAt}>
      {left > 0 ? `Expires in ${format(left)}` : 'Expiring…'}
    </p>
  );
}
