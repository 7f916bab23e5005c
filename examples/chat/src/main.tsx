// Entry point: one Herald client for the page, on the WebSocket of the
// server that served it (same host and port, path /ws), shared through
// HeraldProvider.
import { Herald } from '@herald/client';
import { HeraldProvider } from '@herald/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';

const url = `${window.location.protocol === 'https:' ? 'wss:' : 'ws:'}//${window.location.host}/ws`;
const herald = new Herald({ url });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <HeraldProvider client={herald}>
      <App />
    </HeraldProvider>
  </StrictMode>,
);
