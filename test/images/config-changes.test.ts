// `--change` for import and commit: each Dockerfile instruction as docker's BuildFromConfig
// applies it to a run config.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyConfigChanges } from '../../src/images/config-changes.js';
import type { RunConfig } from '../../src/images/oci-types.js';
import { InvalidArgument } from '../../src/errors/errors.js';

const apply = (changes: string[], base: RunConfig = {}) => applyConfigChanges(base, changes);

function refuses(changes: string[], message: string | RegExp, base: RunConfig = {}): void {
  assert.throws(
    () => apply(changes, base),
    (err: unknown) => {
      assert.ok(err instanceof InvalidArgument, `not an InvalidArgument: ${String(err)}`);
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

describe('config changes: CMD and ENTRYPOINT', () => {
  it('shell form runs through /bin/sh -c, exec form is taken as it is', () => {
    assert.deepEqual(apply(['CMD echo "hello world" && ls']).Cmd, ['/bin/sh', '-c', 'echo "hello world" && ls']);
    assert.deepEqual(apply(['CMD ["/bin/echo", "a b", "c"]']).Cmd, ['/bin/echo', 'a b', 'c']);
    assert.deepEqual(apply(['ENTRYPOINT top -b']).Entrypoint, ['/bin/sh', '-c', 'top -b']);
    assert.deepEqual(apply(['ENTRYPOINT ["/entry.sh"]']).Entrypoint, ['/entry.sh']);
    assert.deepEqual(apply(['CMD []']).Cmd, []);
  });

  it('text that only looks like JSON is shell form', () => {
    assert.deepEqual(apply(['CMD [not json']).Cmd, ['/bin/sh', '-c', '[not json']);
  });

  it('a JSON array of other things than strings is refused, as docker does', () => {
    refuses(['CMD ["a", 1]'], 'when using JSON array syntax, arrays must be comprised of strings only');
  });

  it('the shell form uses the image\'s SHELL when it has one', () => {
    assert.deepEqual(apply(['CMD echo hi'], { Shell: ['/bin/bash', '-o', 'pipefail', '-c'] }).Cmd, ['/bin/bash', '-o', 'pipefail', '-c', 'echo hi']);
  });

  it('lower-case instructions work too', () => {
    assert.deepEqual(apply(['cmd ["sh"]']).Cmd, ['sh']);
  });

  it('ENTRYPOINT drops the CMD of the base, unless the changes set a CMD too', () => {
    const base: RunConfig = { Cmd: ['sh'], Env: ['PATH=/bin'] };
    const entry = apply(['ENTRYPOINT ["/app"]'], base);
    assert.deepEqual(entry.Entrypoint, ['/app']);
    assert.equal(entry.Cmd ?? null, null, 'the inherited CMD was kept');
    const both = apply(['CMD ["--help"]', 'ENTRYPOINT ["/app"]'], base);
    assert.deepEqual(both.Cmd, ['--help']);
    const after = apply(['ENTRYPOINT ["/app"]', 'CMD ["-v"]'], base);
    assert.deepEqual([after.Entrypoint, after.Cmd], [['/app'], ['-v']]);
  });

  it('leaves the config it was given alone', () => {
    const base: RunConfig = { Cmd: ['sh'], Env: ['A=1'], Labels: { x: 'y' } };
    const copy = structuredClone(base);
    apply(['CMD ["other"]', 'ENV A=2', 'LABEL x=z', 'ENTRYPOINT ["e"]'], base);
    assert.deepEqual(base, copy);
  });
});

describe('config changes: ENV and LABEL', () => {
  it('ENV key=value pairs, with double and single quotes and escapes', () => {
    const env = apply(['ENV A=1 B="two words" C=\'single $x\' D=back\\ slash E=']).Env;
    assert.deepEqual(env, ['A=1', 'B=two words', "C=single $x", 'D=back slash', 'E=']);
  });

  it('ENV legacy form: the rest of the line is the value, whitespace kept', () => {
    assert.deepEqual(apply(['ENV GREETING hello   big world']).Env, ['GREETING=hello   big world']);
    assert.deepEqual(apply(['ENV QUOTED "a  b"']).Env, ['QUOTED=a  b']);
  });

  it('ENV replaces a variable of the same name and keeps the order of the others', () => {
    const env = apply(['ENV B=2 A=new'], { Env: ['A=old', 'B=1', 'PATH=/bin'] }).Env;
    assert.deepEqual(env, ['A=new', 'B=2', 'PATH=/bin']);
  });

  it('ENV errors are docker\'s', () => {
    refuses(['ENV LONELY'], 'ENV must have two arguments');
    refuses(['ENV A=1 B'], 'Syntax error - can\'t find = in "B". Must be of the form: name=value');
    refuses(['ENV =x'], /ENV names can not be blank/);
    refuses(['ENV'], 'ENV requires at least one argument');
  });

  it('expands variables from the environment as it was before the instruction', () => {
    const base: RunConfig = { Env: ['PATH=/usr/bin:/bin', 'HOME=/home/app'] };
    const c = apply(
      [
        'ENV PATH=/opt/tool/bin:$PATH LEVEL=${LEVEL:-info} ALT=${HOME:+set} NEW=1 SEEN=$NEW',
        'WORKDIR ${HOME}/src',
        'LABEL home="$HOME" literal=\'$HOME\' escaped=\\$HOME',
        'USER ${RUNAS:-nobody}',
        'VOLUME $HOME/data',
      ],
      base,
    );
    assert.deepEqual(c.Env, ['PATH=/opt/tool/bin:/usr/bin:/bin', 'HOME=/home/app', 'LEVEL=info', 'ALT=set', 'NEW=1', 'SEEN=']);
    assert.equal(c.WorkingDir, '/home/app/src');
    assert.deepEqual(c.Labels, { home: '/home/app', literal: '$HOME', escaped: '$HOME' });
    assert.equal(c.User, 'nobody');
    assert.deepEqual(Object.keys(c.Volumes ?? {}), ['/home/app/data']);
    // CMD and ENTRYPOINT are left to the shell that runs them.
    assert.deepEqual(apply(['CMD echo $HOME'], base).Cmd, ['/bin/sh', '-c', 'echo $HOME']);
  });

  it('LABEL with quoted keys and values, merged into the labels of the base', () => {
    const labels = apply(['LABEL "com.example.vendor"="ACME Inc" version=1.0 empty=""'], { Labels: { keep: 'me', version: '0.9' } }).Labels;
    assert.deepEqual(labels, { keep: 'me', 'com.example.vendor': 'ACME Inc', version: '1.0', empty: '' });
  });

  it('LABEL legacy form `LABEL key value` is still accepted', () => {
    assert.deepEqual(apply(['LABEL maintainer someone <a@b.c>']).Labels, { maintainer: 'someone <a@b.c>' });
  });
});

describe('config changes: EXPOSE, VOLUME, WORKDIR, USER and the rest', () => {
  it('EXPOSE ports, protocols and ranges', () => {
    const ports = apply(['EXPOSE 80 443/tcp 53/udp 8000-8002/udp']).ExposedPorts;
    assert.deepEqual(Object.keys(ports ?? {}).sort(), ['443/tcp', '53/udp', '80/tcp', '8000/udp', '8001/udp', '8002/udp']);
    const merged = apply(['EXPOSE 22'], { ExposedPorts: { '80/tcp': {} } }).ExposedPorts;
    assert.deepEqual(Object.keys(merged ?? {}).sort(), ['22/tcp', '80/tcp']);
    refuses(['EXPOSE http'], /invalid containerPort: http/);
    refuses(['EXPOSE 9000-8000'], /invalid range of ports: 9000-8000/);
  });

  it('VOLUME in both forms', () => {
    assert.deepEqual(Object.keys(apply(['VOLUME /data /logs']).Volumes ?? {}), ['/data', '/logs']);
    assert.deepEqual(Object.keys(apply(['VOLUME ["/var/lib/db", "/with space"]']).Volumes ?? {}), ['/var/lib/db', '/with space']);
    refuses(['VOLUME [""]'], 'VOLUME specified can not be an empty string');
  });

  it('WORKDIR: absolute replaces, relative joins the current one, and is cleaned', () => {
    assert.equal(apply(['WORKDIR /srv/app']).WorkingDir, '/srv/app');
    assert.equal(apply(['WORKDIR app']).WorkingDir, '/app');
    assert.equal(apply(['WORKDIR /usr', 'WORKDIR local/../lib/./x']).WorkingDir, '/usr/lib/x');
    assert.equal(apply(['WORKDIR sub'], { WorkingDir: '/base' }).WorkingDir, '/base/sub');
  });

  it('USER, STOPSIGNAL, ONBUILD, HEALTHCHECK', () => {
    const c = apply([
      'USER 1000:1000',
      'STOPSIGNAL SIGQUIT',
      'ONBUILD RUN make',
      'HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD curl -f http://localhost/',
    ]);
    assert.equal(c.User, '1000:1000');
    assert.equal(c.StopSignal, 'SIGQUIT');
    assert.deepEqual(c.OnBuild, ['RUN make']);
    assert.deepEqual(c.Healthcheck, { Interval: 30e9, Timeout: 5e9, Retries: 3, Test: ['CMD-SHELL', 'curl -f http://localhost/'] });
    assert.deepEqual(apply(['HEALTHCHECK CMD ["true"]']).Healthcheck?.Test, ['CMD', 'true']);
    assert.deepEqual(apply(['HEALTHCHECK NONE']).Healthcheck, { Test: ['NONE'] });
  });

  it('one change may hold several instructions on lines of their own, as docker joins them', () => {
    const c = apply(['ENV A=1\nCMD ["x"]', 'USER nobody']);
    assert.deepEqual([c.Env, c.Cmd, c.User], [['A=1'], ['x'], 'nobody']);
  });
});

describe('config changes: what is not a change command', () => {
  it('names the instruction as the user wrote it', () => {
    refuses(['RUN echo hi'], 'RUN is not a valid change command');
    refuses(['from busybox'], 'from is not a valid change command');
    refuses(['COPY . /'], 'COPY is not a valid change command');
    refuses(['SHELL ["/bin/bash", "-c"]'], 'SHELL is not a valid change command');
    refuses(['NOPE x'], 'NOPE is not a valid change command');
  });

  it('checks every change before applying any', () => {
    refuses(['CMD ["fine"]', 'ADD x /'], 'ADD is not a valid change command');
  });

  it('skips blank changes', () => {
    assert.deepEqual(apply(['', '   ']), {});
  });
});
