// The script library and an ordered run: scripts created with file
// uploads (one with an input file), published, sorted by column; in a
// session, picked, put in order with Move up / Move down, run after the
// customer consents at the terminal, each script's output followed live
// (one script waits for a file the test creates, so its first line is seen
// while it still runs), and the order in which they really ran checked.

import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { scenario, env, en, tr, byTestId, attrIs, until, login, inviteJoinConnect, endSession } from '../lib/harness.js';

const order = () => join(env.workDir, 'script-order.txt');
const go = () => join(env.workDir, 'script-go');

/** The scripts: name, category, description, body, input file. */
function scripts() {
  const ran = (name) => `echo ${name} >> '${order()}'`;
  return [
    { name: 'alpha', category: 'Diagnostics', description: 'Says hello and shows its input file', body: `#!/bin/sh\n${ran('alpha')}\necho "alpha says hello"\ncat input.txt\n`, input: ['input.txt', "a line from alpha's input file\n"] },
    { name: 'beta', category: 'Network', description: 'Checks the network (warns on stderr)', body: `#!/bin/sh\n${ran('beta')}\necho "beta checks the network"\necho "beta warns" >&2\n` },
    { name: 'gamma', category: 'Maintenance', description: 'Cleans up', body: `#!/bin/sh\n${ran('gamma')}\necho "gamma cleans up"\n` },
    {
      name: 'waiter',
      category: 'Other',
      description: 'Waits for the go file (at most 60 s)',
      body: `#!/bin/sh\n${ran('waiter')}\necho "waiting for the go file"\ni=0\nwhile [ ! -e '${go()}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\necho "the go file is there"\n`,
    },
  ];
}

async function rowNames(page) {
  return byTestId(page, 'scripts-rows').locator('tr').evaluateAll((rows) => rows.map((r) => r.dataset.name));
}

async function runOrder(page) {
  return byTestId(page, 'run-list').locator('li').evaluateAll((items) => items.map((li) => li.dataset.name));
}

scenario('the script library and an ordered run', '02', (step, s) => {
  step('logged in, the library is empty', async ({ page }) => {
    await login(page);
    await byTestId(page, 'nav-scripts').click();
    await byTestId(page, 'scripts-empty').waitFor();
  });

  step('scripts created with file uploads', async ({ page }) => {
    for (const sc of scripts()) {
      const exec = join(env.workDir, `${sc.name}.sh`);
      writeFileSync(exec, sc.body);
      await byTestId(page, 'scripts-new').click();
      const dialog = byTestId(page, 'script-dialog');
      await dialog.waitFor();
      await byTestId(page, 'script-form-name').fill(sc.name);
      await byTestId(page, 'script-form-category').fill(sc.category);
      await byTestId(page, 'script-form-description').fill(sc.description);
      await byTestId(page, 'script-form-exec').setInputFiles(exec);
      if (sc.input) {
        const input = join(env.workDir, sc.input[0]);
        writeFileSync(input, sc.input[1]);
        await byTestId(page, 'script-form-input').setInputFiles(input);
      }
      await byTestId(page, 'script-form-save').click();
      await dialog.waitFor({ state: 'detached' });
      await byTestId(page, `script-row-${sc.name}`).waitFor();
    }
    assert.match(await byTestId(page, 'script-row-alpha').textContent(), /alpha\.sh \+ input\.txt/);
  });

  step('published', async ({ page }) => {
    for (const name of ['alpha', 'waiter']) {
      await byTestId(page, `script-publish-${name}`).click();
      await byTestId(page, `script-row-${name}`).locator('.badge.published').waitFor();
    }
    assert.equal(await byTestId(page, 'script-row-beta').locator('.badge.private').textContent(), tr(en, 'scripts.no'));
    assert.equal(await byTestId(page, 'script-publish-alpha').textContent(), tr(en, 'scripts.unpublish'));
  });

  step('sorted by name and by category', async ({ page }) => {
    assert.deepEqual(await rowNames(page), ['alpha', 'beta', 'gamma', 'waiter']);
    await byTestId(page, 'scripts-sort-name').click();
    await until(async () => (await rowNames(page))[0] === 'waiter', 'descending by name');
    assert.deepEqual(await rowNames(page), ['waiter', 'gamma', 'beta', 'alpha']);
    assert.equal(await page.locator('th:has([data-testid="scripts-sort-name"])').getAttribute('aria-sort'), 'descending');
    await byTestId(page, 'scripts-sort-category').click();
    await until(async () => (await rowNames(page))[0] === 'alpha', 'by category');
    // Diagnostics, Maintenance, Network, Other.
    assert.deepEqual(await rowNames(page), ['alpha', 'gamma', 'beta', 'waiter']);
    assert.equal(await page.locator('th:has([data-testid="scripts-sort-category"])').getAttribute('aria-sort'), 'ascending');
  });

  step('in a session: scripts picked', async (st) => {
    const { page } = st;
    s.session = await inviteJoinConnect(st, { ticket: 'T-BROWSER-SCRIPTS' });
    await byTestId(page, 'tab-scripts').click();
    for (const name of ['alpha', 'beta', 'gamma', 'waiter']) await byTestId(page, `script-add-${name}`).click();
    assert.deepEqual(await runOrder(page), ['alpha', 'beta', 'gamma', 'waiter']);
    assert.equal(await byTestId(page, 'script-add-alpha').isDisabled(), true);
  });

  step('put in order with Move up and Move down', async ({ page }) => {
    await byTestId(page, 'run-up-gamma').click();
    await byTestId(page, 'run-up-gamma').click();
    assert.deepEqual(await runOrder(page), ['gamma', 'alpha', 'beta', 'waiter']);
    await byTestId(page, 'run-down-alpha').click();
    assert.deepEqual(await runOrder(page), ['gamma', 'beta', 'alpha', 'waiter']);
    assert.equal(await byTestId(page, 'run-up-gamma').isDisabled(), true);
    assert.equal(await byTestId(page, 'run-down-waiter').isDisabled(), true);
    return byTestId(page, 'run-list');
  });

  step('run: the customer consents, the output is followed live', async ({ page }) => {
    await byTestId(page, 'scripts-run').click();
    const question = await s.session.agent.answerConsent('/allow');
    assert.ok(question.includes('Type /allow'), question);
    const waiter = byTestId(page, 'run-output-waiter');
    await waiter.locator('.out-line', { hasText: 'waiting for the go file' }).waitFor();
    // Still running: the line came before the script ended.
    assert.match(await byTestId(page, 'run-state-waiter').getAttribute('class'), /\brunning\b/);
    assert.equal(await waiter.locator('.out-line', { hasText: 'the go file is there' }).count(), 0);
    for (const name of ['gamma', 'beta', 'alpha']) await byTestId(page, `run-state-${name}`).and(page.locator('.ok')).waitFor();
    return waiter;
  });

  step('the run finished in the chosen order', async ({ page }) => {
    writeFileSync(go(), 'go\n');
    await byTestId(page, 'run-state-waiter').and(page.locator('.ok')).waitFor();
    await byTestId(page, 'run-summary').and(page.locator('.ok')).waitFor();
    await byTestId(page, 'run-output-waiter').locator('.out-line', { hasText: 'the go file is there' }).waitFor();
    assert.equal(readFileSync(order(), 'utf8'), 'gamma\nbeta\nalpha\nwaiter\n');
    await byTestId(page, 'run-output-alpha').locator('.out-line', { hasText: "a line from alpha's input file" }).waitFor();
    await byTestId(page, 'run-output-beta').locator('.out-stderr', { hasText: 'beta warns' }).waitFor();
    const boxes = await byTestId(page, 'run-output').locator('details.run-script').evaluateAll((d) => d.map((x) => x.dataset.name));
    assert.deepEqual(boxes, ['gamma', 'beta', 'alpha', 'waiter']);
    assert.ok(existsSync(go()));
    return byTestId(page, 'run-output');
  });

  step('session ended', async ({ page }) => {
    await endSession(page, s.session.agent, 'scripts done');
  });
});
