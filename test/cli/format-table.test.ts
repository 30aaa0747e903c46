import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';

import { InvalidArgument } from '../../src/errors/errors.js';
import {
  DEFAULT_QUIET_FORMAT,
  isTableFormat,
  renderTable,
  resolveFormat,
  tabwriteText,
  tabwriter,
  templateString,
} from '../../src/cli/format/table.js';
import { ellipsis, stringWidth } from '../../src/cli/format/display-width.js';

// docker/cli's container table, headers and rows (cli/command/formatter/container.go, _test.go).
const CONTAINER_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';
const CONTAINER_HEADERS = {
  ID: 'CONTAINER ID',
  Names: 'NAMES',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Labels: 'LABELS',
};
const containers = [
  { ID: 'containerID1', Image: 'ubuntu', Command: '""', RunningFor: '24 hours ago', Status: '', Ports: '', Names: 'foobar_baz', Size: '0B', State: 'running' },
  { ID: 'containerID2', Image: 'ubuntu', Command: '""', RunningFor: '24 hours ago', Status: '', Ports: '', Names: 'foobar_bar', Size: '0B', State: 'running' },
];

describe('tabwriter (docker: minwidth 10, padding 3, spaces)', () => {
  it('pads every column but the last to the widest cell plus 3, at least 10', () => {
    assert.equal(
      tabwriter([
        ['CONTAINER ID', 'IMAGE', 'NAMES'],
        ['4c01db0b339c', 'ubuntu:22.04', 'web'],
      ]),
      'CONTAINER ID   IMAGE          NAMES\n' +
        '4c01db0b339c   ubuntu:22.04   web\n',
    );
    assert.equal(tabwriter([['A', 'B'], ['x', 'y']]), 'A         B\nx         y\n');
    assert.equal(tabwriter([]), '');
  });

  it('aligns a column only across consecutive lines that have it', () => {
    // The middle line has no tab: it ends the first block, and the last line starts afresh.
    assert.equal(
      tabwriteText('aaaaaaaaaaaa\tb\nplain line\nc\td\n'),
      'aaaaaaaaaaaa   b\nplain line\nc         d\n',
    );
    // Lines with more cells form nested blocks.
    assert.equal(
      tabwriteText('a\tb\tc\nxxxxxxxxxxxxxx\ty\n'),
      `a${' '.repeat(16)}b${' '.repeat(9)}c\nxxxxxxxxxxxxxx   y\n`,
    );
  });

  it('does not pad trailing cells, keeps empty cells, and measures wide characters', () => {
    assert.equal(tabwriteText('a\t\n'), 'a         \n');
    assert.equal(tabwriteText('a\tb'), 'a         b');
    assert.equal(tabwriter([['名前', 'x'], ['abc', 'y']]), `名前${' '.repeat(6)}x\nabc${' '.repeat(7)}y\n`);
    assert.equal(stringWidth('名前'), 4);
    assert.equal(stringWidth('e\u0301'), 1);
  });
});

describe('format strings', () => {
  it('knows table formats and turns \\t and \\n into tabs and newlines', () => {
    assert.equal(isTableFormat('table'), true);
    assert.equal(isTableFormat('table {{.ID}}'), true);
    assert.equal(isTableFormat('{{.ID}}'), false);
    assert.equal(templateString('table {{.ID}}\\t{{.Image}}  '), '{{.ID}}\t{{.Image}}');
    assert.equal(templateString('{{.ID}}\\n'), '{{.ID}}\n');
    assert.equal(templateString('json'), '{{json .}}');
    assert.equal(templateString('table'), '');
  });

  it('resolves --format and --quiet as docker ps does', () => {
    const defaults = { table: CONTAINER_TABLE };
    assert.equal(resolveFormat(undefined, defaults), CONTAINER_TABLE);
    assert.equal(resolveFormat('table', defaults), CONTAINER_TABLE);
    assert.equal(resolveFormat('table', defaults, true), DEFAULT_QUIET_FORMAT);
    assert.equal(resolveFormat('{{.Names}}', defaults, true), '{{.ID}}');
    assert.equal(resolveFormat('{{.Names}}', defaults), '{{.Names}}');
    // docker volume ls keeps a custom format under --quiet.
    assert.equal(
      resolveFormat('table {{.Name}}', { table: 'table {{.Driver}}\t{{.Name}}', quiet: '{{.Name}}', quietOverridesCustom: false }, true),
      'table {{.Name}}',
    );
    assert.equal(resolveFormat('raw', { table: 't', raw: 'name: {{.Name}}\n', rawQuiet: 'name: {{.Name}}' }, true), 'name: {{.Name}}');
  });
});

describe('renderTable (docker/cli formatter expectations)', () => {
  it('prints docker ps’s default table', () => {
    assert.equal(
      renderTable(CONTAINER_TABLE, containers, CONTAINER_HEADERS),
      'CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS    PORTS     NAMES\n' +
        'containerID1   ubuntu    ""        24 hours ago                       foobar_baz\n' +
        'containerID2   ubuntu    ""        24 hours ago                       foobar_bar\n',
    );
    assert.equal(
      renderTable(`${CONTAINER_TABLE}\\t{{.Size}}`, containers, CONTAINER_HEADERS),
      'CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS    PORTS     NAMES        SIZE\n' +
        'containerID1   ubuntu    ""        24 hours ago                       foobar_baz   0B\n' +
        'containerID2   ubuntu    ""        24 hours ago                       foobar_bar   0B\n',
    );
  });

  it('prints one column, and the header alone when there are no rows', () => {
    assert.equal(renderTable('table {{.Image}}', containers, CONTAINER_HEADERS), 'IMAGE\nubuntu\nubuntu\n');
    assert.equal(renderTable('table {{.State}}', containers, CONTAINER_HEADERS), 'STATE\nrunning\nrunning\n');
    assert.equal(renderTable('table {{.Image}}', [], CONTAINER_HEADERS), 'IMAGE\n');
    assert.equal(renderTable('table {{.Image}}\t{{.Size}}', [], CONTAINER_HEADERS), 'IMAGE     SIZE\n');
  });

  it('prints docker images’ table, with its if/else in a cell', () => {
    const format =
      'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}';
    const headers = { Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', CreatedSince: 'CREATED', Size: 'SIZE' };
    const images = [
      { Repository: 'image', Tag: 'tag1', ID: 'imageID1', CreatedSince: '24 hours ago', Size: '0B' },
      { Repository: 'image', Tag: 'tag2', ID: 'imageID2', CreatedSince: '', Size: '0B' },
      { Repository: '<none>', Tag: '<none>', ID: 'imageID3', CreatedSince: '24 hours ago', Size: '0B' },
    ];
    assert.equal(
      renderTable(format, images, headers),
      'REPOSITORY   TAG       IMAGE ID   CREATED        SIZE\n' +
        'image        tag1      imageID1   24 hours ago   0B\n' +
        'image        tag2      imageID2   N/A            0B\n' +
        '<none>       <none>    imageID3   24 hours ago   0B\n',
    );
  });

  it('prints a custom (non-table) format once per row, without alignment', () => {
    assert.equal(renderTable('{{.Names}}\\t{{.Image}}', containers, CONTAINER_HEADERS), 'foobar_baz\tubuntu\nfoobar_bar\tubuntu\n');
    assert.equal(renderTable('{{.ID}}', containers, CONTAINER_HEADERS), 'containerID1\ncontainerID2\n');
    assert.equal(renderTable('json', [{ ID: 'a', Names: 'x<y' }], CONTAINER_HEADERS), '{"ID":"a","Names":"x<y"}\n');
    assert.equal(renderTable('{{.ID}}', [], CONTAINER_HEADERS), '');
  });

  it('heads columns through docker’s header functions', () => {
    const rows = [{ ID: 'abc', Names: 'web', Labels: { 'com.example.vendor': 'ACME' } }];
    assert.equal(
      renderTable('table {{upper .Names}}\t{{json .ID}}', rows, CONTAINER_HEADERS),
      'NAMES     CONTAINER ID\nWEB       "abc"\n',
    );
    // The header row fails at `index` (its .Labels is the string "LABELS"); as docker, the
    // table keeps the part of the header printed before the failure.
    assert.equal(
      renderTable('table {{upper .Names}}\t{{json .ID}}\t{{index .Labels "com.example.vendor"}}', rows, CONTAINER_HEADERS),
      'NAMES     CONTAINER ID   \nWEB       "abc"          ACME\n',
    );
    // pad is not a header stand-in: it pads the header too, keeping the column aligned.
    assert.equal(renderTable('table {{pad .Names 2 0}}|', rows, CONTAINER_HEADERS), '  NAMES|\n  web|\n');
    // docker's header map has a Label method: the last part of the label, dashes as spaces.
    class Row {
      Label(name: string): string {
        return name === 'com.example.my-vendor' ? 'ACME' : '';
      }
    }
    assert.equal(renderTable('table {{.Label "com.example.my-vendor"}}', [new Row()], {}), 'my vendor\nACME\n');
    // A field without a header is headed by its name in capitals.
    assert.equal(renderTable('table {{.Driver}}', [{ Driver: 'local' }], {}), 'DRIVER\nlocal\n');
  });

  it('fails with docker’s messages', () => {
    const fails = (format: string, message: string): void => {
      assert.throws(
        () => renderTable(format, containers, CONTAINER_HEADERS),
        (err: unknown) => err instanceof InvalidArgument && err.message === message,
      );
    };
    fails('{{InvalidFunction}}', 'template parsing error: template: :1: function "InvalidFunction" not defined');
    fails('{{nil}}', 'template parsing error: template: :1:2: executing "" at <nil>: nil is not a command');
    fails('table {{.ID', 'template parsing error: template: :1: unclosed action');
  });
});

describe('ellipsis (docker formatter.Ellipsis)', () => {
  it('cuts to a display width and ends with …', () => {
    assert.equal(ellipsis('this-is-a-long-volume-name-and-will-be-truncated-if-trunc-is-set', 15), 'this-is-a-long…');
    assert.equal(ellipsis('short', 15), 'short');
    assert.equal(ellipsis('abcdef', 1), 'a');
    assert.equal(ellipsis('abcdef', 0), '');
    assert.equal(ellipsis('你好世界', 5), '你好…');
  });
});
