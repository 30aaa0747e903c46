// The committed image's config (the container's, the request's merged over it as docker
// merges, the changes applied) and the tar filter that leaves the runtime's mount points out.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readTar } from '../../src/archive/tar-reader.js';
import { commitRunConfig, withoutPaths } from '../../src/containers/container-commit.js';
import type { ContainerConfig } from '../../src/runtime/oci-spec.js';
import { tarOf } from '../snapshots/helpers.js';

const container: ContainerConfig = {
  Hostname: 'abc123',
  Image: 'busybox',
  Tty: true,
  OpenStdin: true,
  User: 'daemon',
  Env: ['PATH=/bin', 'KEEP=1'],
  Cmd: ['sh', '-c', 'echo hi'],
  Entrypoint: null,
  WorkingDir: '/work',
  Labels: { from: 'container' },
  ExposedPorts: { '80/tcp': {} },
  Volumes: {},
};

describe('commitRunConfig', () => {
  it('keeps what an image config holds, without the container-only fields or empty ones', () => {
    assert.deepEqual(commitRunConfig(container, undefined, []), {
      User: 'daemon',
      Env: ['PATH=/bin', 'KEEP=1'],
      Cmd: ['sh', '-c', 'echo hi'],
      WorkingDir: '/work',
      Labels: { from: 'container' },
      ExposedPorts: { '80/tcp': {} },
    });
  });

  it('merges the request\'s config over the container\'s as docker does', () => {
    const request: ContainerConfig = { Env: ['KEEP=2', 'NEW=1'], Cmd: ['cat'], Labels: { extra: 'yes' }, ExposedPorts: { '443/tcp': {} } };
    const merged = commitRunConfig(container, request, []);
    assert.deepEqual(merged.Env, ['KEEP=2', 'NEW=1', 'PATH=/bin']);
    assert.deepEqual(merged.Cmd, ['cat']);
    assert.deepEqual(merged.Labels, { from: 'container', extra: 'yes' });
    assert.deepEqual(Object.keys(merged.ExposedPorts ?? {}).sort(), ['443/tcp', '80/tcp']);
    assert.equal(merged.User, 'daemon');
    assert.equal(merged.WorkingDir, '/work');
    // An Entrypoint in the request keeps the container's Cmd out unless it sets one.
    const entry = commitRunConfig(container, { Entrypoint: ['/bin/app'] }, []);
    assert.deepEqual(entry.Entrypoint, ['/bin/app']);
    assert.equal(entry.Cmd, undefined);
    // An empty request config changes nothing.
    assert.deepEqual(commitRunConfig(container, {}, []), commitRunConfig(container, undefined, []));
  });

  it('applies the changes last, in order, with docker\'s rules', () => {
    const changed = commitRunConfig(container, { Cmd: ['ignored'] }, ['CMD ["cat","/hello"]', 'ENV KEEP=3 B=$KEEP', 'EXPOSE 8080', 'WORKDIR sub']);
    assert.deepEqual(changed.Cmd, ['cat', '/hello']);
    assert.deepEqual(changed.Env, ['PATH=/bin', 'KEEP=3', 'B=1']);
    assert.deepEqual(Object.keys(changed.ExposedPorts ?? {}).sort(), ['80/tcp', '8080/tcp']);
    assert.equal(changed.WorkingDir, '/work/sub');
    assert.throws(() => commitRunConfig(container, undefined, ['RUN true']), /RUN is not a valid change command/);
  });
});

describe('withoutPaths', () => {
  it('drops the named entries and keeps the rest byte for byte in content', async () => {
    const input = await tarOf([
      [{ name: 'etc/', type: 'directory' }],
      [{ name: 'etc/hosts', type: 'file', size: 0 }, ''],
      [{ name: 'etc/passwd', type: 'file', mode: 0o600, uid: 7 }, 'root:x:0:0\n'],
      [{ name: 'proc/', type: 'directory' }],
      [{ name: 'bin/.wh.vi', type: 'file', size: 0 }, ''],
      [{ name: 'link', type: 'symlink', linkname: 'etc/passwd' }],
    ]);
    const out = withoutPaths(input, new Set(['etc/hosts', 'proc']));
    const entries: string[] = [];
    for await (const { header, body } of readTar(out)) {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      entries.push(`${header.name} ${header.type} ${header.mode.toString(8)} ${header.uid} ${header.linkname} ${Buffer.concat(chunks).toString()}`.trim());
    }
    assert.deepEqual(entries, ['etc/ directory 755 0', 'etc/passwd file 600 7  root:x:0:0', 'bin/.wh.vi file 644 0', 'link symlink 777 0 etc/passwd']);
  });

  it('passes the input through when there is nothing to drop', async () => {
    const input = await tarOf([[{ name: 'a', type: 'file' }, 'a']]);
    assert.equal(withoutPaths(input, new Set()), input);
  });
});
