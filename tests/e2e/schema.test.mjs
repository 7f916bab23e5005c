// Browser end-to-end test of the chat demo with the server validating the
// demo's schema (examples/chat/schema/chat.json): a message the schema
// rejects shows the server's reason under the message box, the draft is
// kept, nothing is delivered, and the corrected message goes out.
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { serverTest } from '../integration/node/lib/harness.mjs';
import { chatServer, dataDir, launchBrowser, openChat, roomName, screenshot, send, waitMessages } from './lib/chat.mjs';

describe('chat demo: a message the schema rejects', () => {
  let server;
  let browser;
  before(async () => {
    server = await chatServer({ name: 'e2e-schema', data: dataDir() }).start();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stopChecked();
  });

  serverTest(() => server, 'shows the reason under the box and keeps the draft', { timeout: 60_000 }, async () => {
    const room = roomName();
    const page = await openChat(browser, server, { name: 'Alice', room });
    const tooLong = 'x'.repeat(501);
    await send(page, tooLong);
    const alert = page.getByRole('alert').filter({ hasText: 'Rejected by the server (validation_failed)' });
    await alert.waitFor();
    assert.match(await alert.textContent(), /\/text/, 'the reason names the field');
    assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), tooLong, 'the draft is kept');
    assert.equal(await page.getByLabel('Message', { exact: true }).getAttribute('aria-invalid'), 'true');
    await screenshot(page, 'schema-rejected');

    await send(page, 'short enough');
    await waitMessages(page, ['short enough']);
    assert.equal(await alert.count(), 0, 'the error is gone once the message went out');
    await page.context().close();
  });
});
