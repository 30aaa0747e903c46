// How a create request's config and its image's merge, as docker's: Entrypoint and Cmd,
// `--entrypoint ''`, Env by key, and the health check.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeImageConfig } from '../../src/containers/container.js';

const image = { Entrypoint: ['/entry'], Cmd: ['default'], Env: ['A=1', 'B=2'], Healthcheck: { Test: ['CMD', 'true'], Interval: 5e9 } };

describe('mergeImageConfig', () => {
  it('an Entrypoint in the request drops the image\'s Cmd; a Cmd alone keeps the image\'s Entrypoint', () => {
    assert.deepEqual([mergeImageConfig({ Entrypoint: ['/mine'] }, image).Entrypoint, mergeImageConfig({ Entrypoint: ['/mine'] }, image).Cmd], [['/mine'], null]);
    const cmdOnly = mergeImageConfig({ Cmd: ['x'] }, image);
    assert.deepEqual([cmdOnly.Entrypoint, cmdOnly.Cmd], [['/entry'], ['x']]);
  });

  it("`--entrypoint ''` ([\"\"]) clears the entrypoint and keeps the Cmd given, else the image's", () => {
    const cleared = mergeImageConfig({ Entrypoint: [''], Cmd: ['echo', 'hi'] }, image);
    assert.deepEqual([cleared.Entrypoint, cleared.Cmd], [null, ['echo', 'hi']]);
    assert.deepEqual(mergeImageConfig({ Entrypoint: [''] }, image).Cmd, ['default']);
  });

  it('Env merges by key; the image\'s health check unless the request has one, whose Test it may leave to the image', () => {
    assert.deepEqual(mergeImageConfig({ Env: ['B=3', 'C=4'] }, image).Env, ['A=1', 'B=3', 'C=4']);
    assert.deepEqual(mergeImageConfig({}, image).Healthcheck, image.Healthcheck);
    assert.deepEqual(mergeImageConfig({ Healthcheck: { Retries: 7 } }, image).Healthcheck, { Test: ['CMD', 'true'], Interval: 5e9, Retries: 7 });
    assert.deepEqual(mergeImageConfig({ Healthcheck: { Test: ['NONE'] } }, image).Healthcheck, { Test: ['NONE'] });
  });
});
