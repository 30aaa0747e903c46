// How container commands print: ps rows and ports (docker's formatter cases), stats rows,
// top's columns, port's natural order, and --since/--until timestamps.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterArgs } from '../../src/cli/args.js';
import { alignColumns, joinHostPort } from '../../src/cli/commands/containers.js';
import { naturalCompare } from '../../src/util/sort-order.js';
import { getTimestamp } from '../../src/cli/commands/logs.js';
import { ContainerRow, containerContext, displayablePorts, type ContainerSummary } from '../../src/cli/commands/ps-format.js';
import { marshalJson } from '../../src/cli/format/go-json.js';
import { statsEntry, StatsRow } from '../../src/cli/commands/stats.js';
import { UsageError } from '../../src/cli/args.js';
import { renderTable } from '../../src/cli/format/table.js';

const ID = 'b05b97f8478ca53cd7254c78013344a35efa514ae8b58fddd8562da65a165373';

function summary(over: Partial<ContainerSummary> = {}): ContainerSummary {
  return {
    Id: ID,
    Names: ['/web'],
    Image: 'busybox',
    ImageID: 'sha256:654fc8fd836e0123456789abcdef0123456789abcdef0123456789abcdef01',
    Command: 'echo hello',
    Created: 1_700_000_000,
    Ports: [],
    Labels: { b: '2', a: '1' },
    State: 'exited',
    Status: 'Exited (0) 2 hours ago',
    ...over,
  };
}

describe('ps rows (docker ContainerContext)', () => {
  const now = (1_700_000_000 + 3 * 3600) * 1000;

  it('truncates the id, quotes and shortens the command, strips name slashes', () => {
    const row = new ContainerRow(summary({ Command: 'sh -c echo out; echo err >&2; exit 3' }), true, now);
    assert.equal(row.ID, 'b05b97f8478c');
    assert.equal(row.Command, '"sh -c echo out; ech…"');
    assert.equal(row.Names, 'web');
    assert.equal(row.RunningFor, '3 hours ago');
    const full = new ContainerRow(summary({ Command: 'sh -c "x"' }), false, now);
    assert.equal(full.ID, ID);
    assert.equal(full.Command, '"sh -c \\"x\\""');
  });

  it('names: a link alias (a/b) is dropped when truncating', () => {
    assert.equal(new ContainerRow(summary({ Names: ['/other/alias', '/web'] }), true, now).Names, 'web');
    assert.equal(new ContainerRow(summary({ Names: ['/other/alias', '/web'] }), false, now).Names, 'other/alias,web');
  });

  it('image: the short id when the container was made from an id, digests dropped when truncating', () => {
    assert.equal(new ContainerRow(summary({ Image: 'sha256:654fc8fd836e0123456789abcdef0123456789abcdef0123456789abcdef01' }), true, now).Image, '654fc8fd836e');
    assert.equal(new ContainerRow(summary({ Image: `busybox:1@sha256:${'a'.repeat(64)}` }), true, now).Image, 'busybox:1');
    assert.equal(new ContainerRow(summary({ Image: `docker.io/library/busybox@sha256:${'a'.repeat(64)}` }), true, now).Image, 'busybox');
    assert.equal(new ContainerRow(summary({ Image: '' }), true, now).Image, '<no image>');
  });

  it('labels sorted, one label by name, sizes with the virtual size', () => {
    const row = new ContainerRow(summary({ SizeRw: 12, SizeRootFs: 1_530_000 }), true, now);
    assert.equal(row.Labels, 'a=1,b=2');
    assert.equal(row.Label('b'), '2');
    assert.equal(row.Label('zz'), '');
    assert.equal(row.Size, '12B (virtual 1.53MB)');
    assert.equal(new ContainerRow(summary(), true, now).Size, '0B');
  });

  it('json has every field, keys sorted', () => {
    const json = marshalJson(containerContext(new ContainerRow(summary(), true, now)));
    assert.deepEqual(Object.keys(JSON.parse(json) as object), ['Command', 'CreatedAt', 'ID', 'Image', 'Labels', 'LocalVolumes', 'Mounts', 'Names', 'Networks', 'Platform', 'Ports', 'RunningFor', 'Size', 'State', 'Status']);
  });

  it("{{json .}} escapes <, > and & as docker's MarshalJSON does; json of one field does not", () => {
    const ports = [{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }];
    const row = containerContext(new ContainerRow(summary({ Labels: { x: '<a&b>' }, Ports: ports }), true, now));
    const out = renderTable('{{json .Labels}} {{json .}}', [row], {});
    assert.match(out, /^"x=<a&b>" \{.*"Labels":"x=\\u003ca\\u0026b\\u003e".*"Ports":"0\.0\.0\.0:8080-\\u003e80\/tcp"/);
  });

  it("renders docker's default table", () => {
    const out = renderTable('table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Status}}\t{{.Names}}', [containerContext(new ContainerRow(summary(), true, now))], {
      ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', Status: 'STATUS', Names: 'NAMES',
    });
    assert.equal(out, 'CONTAINER ID   IMAGE     COMMAND        STATUS                   NAMES\nb05b97f8478c   busybox   "echo hello"   Exited (0) 2 hours ago   web\n');
  });
});

describe('ps ports (docker TestDisplayablePorts)', () => {
  const cases: Array<[ContainerSummary['Ports'], string]> = [
    [[{ PrivatePort: 9988, Type: 'tcp' }], '9988/tcp'],
    [[{ IP: '0.0.0.0', PrivatePort: 9988, Type: 'tcp' }], '0.0.0.0:0->9988/tcp'],
    [[{ IP: '::', PrivatePort: 9988, Type: 'tcp' }], '[::]:0->9988/tcp'],
    [[{ PrivatePort: 9988, PublicPort: 8899, Type: 'tcp' }], '9988/tcp'],
    [[{ IP: '4.3.2.1', PrivatePort: 9988, PublicPort: 8899, Type: 'tcp' }], '4.3.2.1:8899->9988/tcp'],
    [[{ IP: '::1', PrivatePort: 9988, PublicPort: 9988, Type: 'tcp' }], '[::1]:9988->9988/tcp'],
    [[{ PrivatePort: 9988, Type: 'udp' }, { PrivatePort: 9988, Type: 'udp' }], '9988/udp, 9988/udp'],
    [[{ IP: '1.2.3.4', PublicPort: 9998, PrivatePort: 9998, Type: 'udp' }, { IP: '1.2.3.4', PublicPort: 9999, PrivatePort: 9999, Type: 'udp' }], '1.2.3.4:9998-9999->9998-9999/udp'],
    [[{ IP: '1.2.3.4', PublicPort: 8887, PrivatePort: 9998, Type: 'udp' }, { IP: '1.2.3.4', PublicPort: 8888, PrivatePort: 9999, Type: 'udp' }], '1.2.3.4:8887->9998/udp, 1.2.3.4:8888->9999/udp'],
    [[{ PrivatePort: 6677, Type: 'tcp' }, { PrivatePort: 6678, Type: 'tcp' }, { PrivatePort: 6680, Type: 'tcp' }, { PrivatePort: 6676, Type: 'udp' }], '6677-6678/tcp, 6676/udp, 6680/tcp'],
    [[{ IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }, { IP: '::', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }], '0.0.0.0:8080->80/tcp, [::]:8080->80/tcp'],
  ];
  for (const [ports, expected] of cases) {
    it(expected, () => assert.equal(displayablePorts(ports ?? []), expected));
  }
});

describe('filters as docker sends them', () => {
  it('name=value pairs into {"name":{"value":true}}, names lower case, both trimmed', () => {
    assert.deepEqual(filterArgs(['status=exited', ' Name = web ', 'status=created'], 'filter', 'f'), { status: { exited: true, created: true }, name: { web: true } });
  });

  it('a value without "=" is a flag error', () => {
    assert.throws(() => filterArgs(['foo'], 'filter', 'f'), (err: Error) => {
      assert.ok(err instanceof UsageError);
      assert.equal(err.message, 'invalid argument "foo" for "-f, --filter" flag: bad format of filter (expected name=value)');
      return true;
    });
  });
});

describe('top, port', () => {
  it('top aligns columns as tabwriter(20, 1, 3)', () => {
    assert.equal(alignColumns([['UID', 'PID', 'CMD'], ['root', '12345', 'sleep 100']], 20, 3), 'UID                 PID                 CMD\nroot                12345               sleep 100\n');
  });

  it('port sorts naturally and brackets IPv6 hosts', () => {
    assert.deepEqual(['80/tcp -> 0.0.0.0:8080', '9/tcp -> 0.0.0.0:9', '10/tcp -> 0.0.0.0:10'].sort(naturalCompare), ['9/tcp -> 0.0.0.0:9', '10/tcp -> 0.0.0.0:10', '80/tcp -> 0.0.0.0:8080']);
    assert.equal(joinHostPort('::', 8080), '[::]:8080');
    assert.equal(joinHostPort('0.0.0.0', '80'), '0.0.0.0:80');
  });
});

describe('stats rows', () => {
  const json = {
    name: '/web',
    id: ID,
    pids_stats: { current: 3 },
    blkio_stats: { io_service_bytes_recursive: [{ op: 'Read', value: 4096 }, { op: 'Write', value: 1_000_000 }, { op: 'read', value: 4 }] },
    cpu_stats: { cpu_usage: { total_usage: 300 }, system_cpu_usage: 2000, online_cpus: 2 },
    precpu_stats: { cpu_usage: { total_usage: 100 }, system_cpu_usage: 1000 },
    memory_stats: { usage: 10 * 1024 * 1024, limit: 100 * 1024 * 1024, stats: { total_inactive_file: 2 * 1024 * 1024 } },
    networks: { eth0: { rx_bytes: 1500, tx_bytes: 500 }, eth1: { rx_bytes: 500, tx_bytes: 0 } },
  };

  it("computes docker's numbers: CPU over the interval times CPUs, memory without inactive file cache", () => {
    const row = new StatsRow(statsEntry('web', json), true);
    assert.equal(row.ID, 'b05b97f8478c');
    assert.equal(row.Name, 'web');
    assert.equal(row.CPUPerc, '40.00%');
    assert.equal(row.MemUsage, '8MiB / 100MiB');
    assert.equal(row.MemPerc, '8.00%');
    assert.equal(row.NetIO, '2kB / 500B');
    assert.equal(row.BlockIO, '4.1kB / 1MB');
    assert.equal(row.PIDs, '3');
  });

  it('an invalid entry shows dashes', () => {
    const row = new StatsRow({ ...statsEntry('web', {}), isInvalid: true }, true);
    assert.deepEqual([row.Name, row.CPUPerc, row.MemUsage, row.NetIO, row.PIDs], ['--', '--', '-- / --', '--', '--']);
  });
});

describe('--since and --until (docker GetTimestamp)', () => {
  const ref = new Date(Date.UTC(2024, 0, 2, 12, 0, 0));

  it('a Go duration counts back from now, in whole seconds', () => {
    assert.equal(getTimestamp('10m', ref), String(ref.getTime() / 1000 - 600));
    assert.equal(getTimestamp('1h30m', ref), String(ref.getTime() / 1000 - 5400));
  });

  it('RFC 3339 times and dates with a zone become seconds.nanoseconds', () => {
    assert.equal(getTimestamp('2006-01-02T15:04:05Z', ref), '1136214245.000000000');
    assert.equal(getTimestamp('2006-01-02T15:04:05.123456789+07:00', ref), '1136189045.123456789');
    assert.equal(getTimestamp('2006-01-02T15:04Z', ref), '1136214240.000000000');
    assert.equal(getTimestamp('2006-01-02Z', ref), '1136160000.000000000');
  });

  it('times without a zone are local', () => {
    assert.equal(getTimestamp('2006-01-02T15:04:05', ref), `${new Date(2006, 0, 2, 15, 4, 5).getTime() / 1000}.000000000`);
    assert.equal(getTimestamp('2006-01-02', ref), `${new Date(2006, 0, 2).getTime() / 1000}.000000000`);
  });

  it('Unix timestamps pass through; anything else is refused', () => {
    assert.equal(getTimestamp('1136073600', ref), '1136073600');
    assert.equal(getTimestamp('1136073600.000000001', ref), '1136073600.000000001');
    assert.equal(getTimestamp('0', ref), '0');
    assert.throws(() => getTimestamp('yesterday', ref), { message: 'failed to parse value as time or duration: "yesterday"' });
    assert.throws(() => getTimestamp('2006-13-02', ref), /^Error: parsing time "2006-13-02"/);
  });
});
