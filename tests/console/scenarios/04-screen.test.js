// The screen viewer: the agent shares a real X display (Xvfb) through the
// screen plugin, the policy allows it, and the canvas shows the display:
// not blank, the window of a known colour the test put there at its
// place, and the customer's sharing indicator along the top.

import assert from 'node:assert/strict';
import { scenario, env, byTestId, attrIs, until, login, inviteJoinConnect, endSession } from '../lib/harness.js';

/** The sharing indicator's colour (lifeline_agent::screen::indicator::INDICATOR_RGB) and height. */
const INDICATOR_RGB = [0xff, 0xb0, 0x00];
const INDICATOR_HEIGHT = 28;

/** The canvas's size and a few facts about its pixels, read in the page. */
function readCanvas(page, mark) {
  return byTestId(page, 'screen-canvas').evaluate(
    (canvas, { mark, indicator, indicatorHeight }) => {
      const c = canvas.getContext('2d');
      const { width, height } = canvas;
      const all = c.getImageData(0, 0, width, height).data;
      const colours = new Set();
      let lit = 0;
      for (let i = 0; i < all.length; i += 4 * 97) {
        colours.add((all[i] << 16) | (all[i + 1] << 8) | all[i + 2]);
        if (all[i] || all[i + 1] || all[i + 2]) lit += 1;
      }
      const at = (x, y) => Array.from(c.getImageData(x, y, 1, 1).data.slice(0, 3));
      const cx = mark.x + Math.floor(mark.w / 2);
      const cy = mark.y + Math.floor(mark.h / 2);
      let indicatorPixels = 0;
      const top = c.getImageData(0, 0, width, Math.min(indicatorHeight, height)).data;
      for (let i = 0; i < top.length; i += 4) {
        if (top[i] === indicator[0] && top[i + 1] === indicator[1] && top[i + 2] === indicator[2]) indicatorPixels += 1;
      }
      return {
        width,
        height,
        colours: colours.size,
        lit,
        centre: at(cx, cy),
        corners: [at(mark.x + 2, mark.y + 2), at(mark.x + mark.w - 3, mark.y + mark.h - 3)],
        outside: at(mark.x - 3, mark.y - 3),
        indicatorPixels,
      };
    },
    { mark, indicator: INDICATOR_RGB, indicatorHeight: INDICATOR_HEIGHT },
  );
}

scenario('the screen viewer shows the shared screen', '04', (step, s) => {
  step('a session', async (st) => {
    await login(st.page);
    s.session = await inviteJoinConnect(st, { ticket: 'T-BROWSER-SCREEN' });
    await byTestId(st.page, 'tab-screen').click();
  });

  step('sharing, allowed by the policy', async ({ page }) => {
    await byTestId(page, 'screen-quality').selectOption('lossless');
    await byTestId(page, 'screen-share').click();
    await attrIs(byTestId(page, 'screen-state'), 'data-state', 'sharing');
    await until(async () => (await byTestId(page, 'screen-size').textContent()) === '800×600', 'the layout (800×600)');
    assert.equal(await byTestId(page, 'screen-stop').isDisabled(), false);
  });

  step('the canvas shows the display', async ({ page }) => {
    const mark = env.screenMark;
    const seen = await until(async () => {
      const r = await readCanvas(page, mark);
      return r.centre.join() === mark.rgb.join() ? r : null;
    }, `the window's colour ${mark.rgb} at its centre`);
    assert.equal(seen.width, 800);
    assert.equal(seen.height, 600);
    assert.ok(seen.colours >= 2 && seen.lit > 0, `not blank: ${JSON.stringify(seen)}`);
    for (const c of seen.corners) assert.deepEqual(c, mark.rgb, 'the window fills its rectangle');
    assert.notDeepEqual(seen.outside, mark.rgb, 'and only its rectangle');
    assert.ok(seen.indicatorPixels > 100, `the sharing indicator along the top: ${seen.indicatorPixels} pixels`);
    // The picture keeps coming: frames counted.
    await until(async () => /\d/.test(await byTestId(page, 'screen-fps').textContent()), 'the frame counter');
    return byTestId(page, 'screen-panel');
  });

  step('sharing stopped', async ({ page }) => {
    await byTestId(page, 'screen-stop').click();
    await attrIs(byTestId(page, 'screen-state'), 'data-state', 'stopped');
    assert.equal(await byTestId(page, 'screen-share').isDisabled(), false);
  });

  step('session ended', async ({ page }) => {
    await endSession(page, s.session.agent, 'screen seen');
  });
});
