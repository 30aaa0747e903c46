import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';

import { InvalidArgument } from '../../src/errors/errors.js';
import { asStruct, compileTemplate, type TemplateOptions } from '../../src/cli/format/go-template.js';

/** Expected outputs are what docker (Go text/template + docker's funcs) prints for the same input. */
function run(src: string, data?: unknown, options?: TemplateOptions): string {
  return compileTemplate(src, undefined, options).execute(data);
}

function assertFails(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidArgument, `expected InvalidArgument, got ${String(err)}`);
    assert.equal(err.message, message);
    return true;
  });
}

class ContainerRow {
  ID = '4c01db0b339c';
  Names = 'web';
  Label(name: string): string {
    return name === 'com.example.vendor' ? 'ACME' : '';
  }
  get Status(): string {
    return 'Up 3 minutes';
  }
}

const inspect = {
  Id: 'abc',
  Name: '/web',
  State: { Status: 'running', Running: true, Pid: 42, ExitCode: 0, Health: null },
  Config: {
    Labels: { 'com.docker.compose.project': 'shop', maintainer: 'me' },
    Env: ['PATH=/usr/bin', 'A=1'],
    Cmd: ['sh', '-c', 'echo hi'],
  },
  NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2' }, front: { IPAddress: '10.0.0.5' } } },
  Mounts: [],
  Names: ['/web', '/alias'],
  Size: 1.5,
};

describe('go template: fields and values', () => {
  it('reads fields, nested fields, map keys and dot', () => {
    assert.equal(run('{{.Name}} {{.State.Status}} {{.State.Pid}}', inspect), '/web running 42');
    assert.equal(run('{{.Config.Labels.maintainer}}', inspect), 'me');
    assert.equal(run('this is a {{ . }}', 'string'), 'this is a string');
    assert.equal(run('{{.NetworkSettings.Networks.bridge.IPAddress}}', inspect), '172.17.0.2');
  });

  it('prints Go values: <no value>, <nil>, booleans, slices, sorted maps', () => {
    assert.equal(run('{{.Missing}}', inspect), '<no value>');
    assert.equal(run('{{.State.Health}}', inspect), '<nil>');
    assert.equal(run('{{.State.Running}}', inspect), 'true');
    assert.equal(run('{{.Config.Cmd}}', inspect), '[sh -c echo hi]');
    assert.equal(run('{{.Config.Labels}}', inspect), 'map[com.docker.compose.project:shop maintainer:me]');
    assert.equal(run('{{.Mounts}}', inspect), '[]');
    assert.equal(run('{{.Size}}', inspect), '1.5');
    assert.equal(run('{{.}}', { b: [1, null], a: { z: true } }), 'map[a:map[z:true] b:[1 <nil>]]');
    assert.equal(run('{{.}}'), '<no value>');
  });

  it('indexes maps and slices', () => {
    assert.equal(run('{{index .Config.Labels "com.docker.compose.project"}}', inspect), 'shop');
    // A missing key gives the zero value of the map's values: "" for labels.
    assert.equal(run('[{{index .Config.Labels "nope"}}]', inspect), '[]');
    assert.equal(run('{{index .Config.Cmd 2}}', inspect), 'echo hi');
    assert.equal(run('{{index .M 1 "eleven"}}', { M: [{}, { eleven: 11 }] }), '11');
    assert.equal(run('{{index "abc" 1}}'), '98');
  });

  it('calls methods and getters of class instances (struct-like rows)', () => {
    const row = new ContainerRow();
    assert.equal(run('{{.ID}} {{.Names}} {{.Status}} {{.Label "com.example.vendor"}}', row), '4c01db0b339c web Up 3 minutes ACME');
  });

  it('makes struct-like rows from plain fields with asStruct', () => {
    const row = asStruct({ ID: 'abc', Label: (k: string) => `<${k}>` }, '*formatter.ContainerContext');
    assert.equal(run('{{.ID}} {{.Label "a"}} {{.}} {{json .}}', row), 'abc <a> {abc} {"ID":"abc"}');
    assertFails(
      () => run('{{.Nope}}', row),
      'template parsing error: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext',
    );
  });

  it('parses literals as Go does', () => {
    assert.equal(run('{{"a\\tb"}}|{{`r\\n`}}|{{\'a\'}}|{{0x1F}}|{{-3}}|{{1.5}}|{{true}}|{{"\\u00e9"}}'), 'a\tb|r\\n|97|31|-3|1.5|true|é');
  });
});

describe('go template: actions', () => {
  it('declares and assigns variables, and $ is the data', () => {
    assert.equal(run('{{$v := .Name}}{{$v}} {{$v = "x"}}{{$v}}', inspect), '/web x');
    assert.equal(run('{{range .Names}}{{.}}@{{$.Id}} {{end}}', inspect), '/web@abc /alias@abc ');
    assert.equal(run('{{with $x := .State}}{{$x.Status}}{{end}}', inspect), 'running');
  });

  it('runs pipelines: the value goes in as the last argument', () => {
    assert.equal(run('{{.Name | printf "%s!"}}', inspect), '/web!');
    assert.equal(run('{{.Name | upper | printf "<%s>"}}', inspect), '</WEB>');
    assert.equal(run('{{join (split . ":") "/"}}', 'text:with:colon'), 'text/with/colon');
    assert.equal(run('{{"," | join .Names}}', inspect), '/web,/alias');
    // As in docker: `.Names | join ","` calls join(",", .Names), and a list is no separator.
    assertFails(
      () => run('{{.Names | join ","}}', inspect),
      'template parsing error: template: :1:16: executing "" at <",">: wrong type for value; expected string; got []string',
    );
  });

  it('branches with if / else if / else', () => {
    const t = compileTemplate('{{if eq .N 1}}one{{else if gt .N 1}}many{{else}}none{{end}}');
    assert.equal(t.execute({ N: 1 }), 'one');
    assert.equal(t.execute({ N: 5 }), 'many');
    assert.equal(t.execute({ N: 0 }), 'none');
    assert.equal(run('{{if .Mounts}}m{{else}}no mounts{{end}}', inspect), 'no mounts');
    assert.equal(run('{{if .State.Health}}h{{else}}no health{{end}}', inspect), 'no health');
  });

  it('ranges over slices, maps in key order, with else, break and continue', () => {
    assert.equal(run('{{range $i, $e := .Config.Env}}{{$i}}:{{$e}};{{end}}', inspect), '0:PATH=/usr/bin;1:A=1;');
    assert.equal(
      run('{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}', inspect),
      'bridge=172.17.0.2 front=10.0.0.5 ',
    );
    assert.equal(run('{{range .Labels}}-{{.}}-{{end}}', { Labels: { two: 2, one: 1, three: 3 } }), '-1--3--2-');
    assert.equal(run('{{range .Mounts}}x{{else}}EMPTY{{end}}', inspect), 'EMPTY');
    assert.equal(run('{{range .Missing}}x{{else}}EMPTY{{end}}', inspect), 'EMPTY');
    assert.equal(run('{{range .SI}}-{{.}}-{{break}}NOTREACHED{{else}}EMPTY{{end}}', { SI: [3, 4, 5] }), '-3-');
    assert.equal(run('{{range .SI}}-{{.}}-{{continue}}NOTREACHED{{end}}', { SI: [3, 4, 5] }), '-3--4--5-');
    assert.equal(run('{{range 3}}{{.}}{{end}}'), '012');
  });

  it('sets dot with with, and chains else with', () => {
    assert.equal(run('{{with .State}}{{.Status}}{{end}}', inspect), 'running');
    assert.equal(run('{{with .Nope}}x{{else}}none{{end}}', inspect), 'none');
    assert.equal(run('{{with 0}}{{.}}{{else with false}}{{.}}{{else with `notempty`}}{{.}}{{end}}'), 'notempty');
  });

  it('trims spaces around {{- and -}} and drops comments', () => {
    assert.equal(run('a  {{- .Name -}}  \n b', inspect), 'a/webb');
    assert.equal(run('x {{- /* a comment */ -}}\n y'), 'xy');
    assert.equal(run('{{/* c */}}z'), 'z');
    assert.equal(run('{{- 3 }}'), '3');
  });

  it('defines and invokes templates', () => {
    assert.equal(run('{{define "n"}}[{{.}}]{{end}}{{template "n" .Name}}{{block "b" .Id}}<{{.}}>{{end}}', inspect), '[/web]<abc>');
  });
});

describe('go template: functions', () => {
  it('compares with eq ne lt le gt ge and combines with and or not', () => {
    assert.equal(run('{{eq .A "x"}} {{eq .A "y" "x"}} {{ne .N 2}} {{lt .N 3}} {{le .N 2}} {{gt .N 2}} {{ge .N 2}}', { A: 'x', N: 2 }), 'true true false true true false true');
    assert.equal(run('{{lt "a" "b"}} {{eq .Missing "x"}}', {}), 'true false');
    assert.equal(run('{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}'), 'false 0 0 1');
    assert.equal(run('{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}'), '0 1 true 1');
    assert.equal(run('{{not true}} {{not .Missing}} {{1 | and 1}}', {}), 'false true 1');
    assertFails(
      () => run('{{eq .A 1}}', { A: 'x' }),
      'template parsing error: template: :1:2: executing "" at <eq .A 1>: error calling eq: incompatible types for comparison: string and int',
    );
  });

  it('measures with len (strings in bytes, as Go)', () => {
    assert.equal(run('{{len .Names}} {{len .Config.Labels}} {{len "é"}}', inspect), '2 2 2');
  });

  it('formats with printf, print and println', () => {
    assert.equal(run('{{printf "%04x" 127}}'), '007f');
    assert.equal(run('{{printf "%g" 3.5}}'), '3.5');
    assert.equal(run('{{printf "%-10s|%5d|%q|%v|%t|%x|%.2f" .Name .State.Pid .Name .Names true 255 .Size}}', inspect), '/web      |   42|"/web"|[/web /alias]|true|ff|1.50');
    assert.equal(run('{{printf "%d" .Name}}', inspect), '%!d(string=/web)');
    assert.equal(run('{{print 1 2 3}}|{{print nil}}|{{print "a" 1 2 "b"}}'), '1 2 3|<nil>|a1 2b');
    assert.equal(run('{{println 1 2 3}}'), '1 2 3\n');
  });

  it('has docker’s json: compact, keys in order, <>& left as they are', () => {
    assert.equal(run('{{json .Ports}}', { Ports: '0.0.0.0:2->8/udp' }), '"0.0.0.0:2->8/udp"');
    assert.equal(run('{{json .State}}', inspect), '{"Status":"running","Running":true,"Pid":42,"ExitCode":0,"Health":null}');
    assert.equal(run('{{json .Config.Cmd}}', inspect), '["sh","-c","echo hi"]');
    assert.equal(run('{{json .Missing}}', {}), 'null');
  });

  it('has docker’s string functions', () => {
    const source = 'tupx5xzf6hvsrhnruz5cr8gwp';
    assert.equal(run('{{truncate . 5}}', source), 'tupx5');
    assert.equal(run('{{truncate . 30}}', source), source);
    assert.equal(run('{{pad . 3 3}}', source), `   ${source}   `);
    assert.equal(run('{{pad . 3 3}}', ''), '');
    assert.equal(run('{{title "hello world-foo_bar"}} {{lower "ABC"}} {{upper "abc"}}'), 'Hello World-Foo_bar abc ABC');
    assert.equal(run('{{split "a:b:c" ":"}} {{len (split "a:b:c" ":")}}'), '[a b c] 3');
    assert.equal(run('{{join .Names ", "}}', inspect), '/web, /alias');
    assert.equal(run('{{join .L ","}}', { L: { b: '2', a: '1' } }), '1,2');
    assert.equal(run('{{html "<b>\\"x\\"</b>"}} {{urlquery "http://x.org/"}} {{js "It\'d"}}'), '&lt;b&gt;&#34;x&#34;&lt;/b&gt; http%3A%2F%2Fx.org%2F It\\\'d');
  });

  it('calls functions given by the caller, and can swap them after parsing', () => {
    const t = compileTemplate('{{double .N}} {{.N | double | double}}', { double: (n: number) => n * 2 });
    assert.equal(t.execute({ N: 3 }), '6 12');
    assert.equal(t.withFuncs({ double: (n: number) => n + 100 }).execute({ N: 1 }), '101 201');
  });
});

describe('go template: errors read as docker prints them', () => {
  it('reports parse errors with the line', () => {
    assertFails(() => compileTemplate('{{.Foo'), 'template parsing error: template: :1: unclosed action');
    assertFails(() => compileTemplate('{{InvalidFunction}}'), 'template parsing error: template: :1: function "InvalidFunction" not defined');
    assertFails(() => compileTemplate('{{if .A}}x'), 'template parsing error: template: :1: unexpected EOF');
    assertFails(() => compileTemplate('a\n{{end}}'), 'template parsing error: template: :2: unexpected {{end}}');
    assertFails(() => compileTemplate('{{$x}}'), 'template parsing error: template: :1: undefined variable "$x"');
    assertFails(() => compileTemplate('{{}}'), 'template parsing error: template: :1: missing value for command');
    assertFails(() => compileTemplate('{{.A!}}'), "template parsing error: template: :1: bad character U+0021 '!'");
    assertFails(() => compileTemplate('{{"abc}}'), 'template parsing error: template: :1: unterminated quoted string');
    assertFails(() => compileTemplate('{{break}}'), 'template parsing error: template: :1: {{break}} outside {{range}}');
    assertFails(() => compileTemplate('{{.A | 3}}'), 'template parsing error: template: :1: non executable command in pipeline stage 2');
  });

  it('reports execution errors with line:byte and the failing node', () => {
    assertFails(() => run('{{nil}}'), 'template parsing error: template: :1:2: executing "" at <nil>: nil is not a command');
    assertFails(
      () => run('{{.ID}} {{.Nope}}', new ContainerRow()),
      'template parsing error: template: :1:10: executing "" at <.Nope>: can\'t evaluate field Nope in type *ContainerRow',
    );
    assertFails(
      () => run('{{.Names.Foo}}', inspect),
      'template parsing error: template: :1:8: executing "" at <.Names.Foo>: can\'t evaluate field Foo in type []string',
    );
    assertFails(
      () => run('x\n  {{.State.Health.Status}}', inspect),
      'template parsing error: template: :2:10: executing "" at <.State.Health.Status>: nil pointer evaluating interface {}.Status',
    );
    assertFails(
      () => run('{{index .Names 5}}', inspect),
      'template parsing error: template: :1:2: executing "" at <index .Names 5>: error calling index: index out of range: 5',
    );
    assertFails(
      () => run('{{join .Names}}', inspect),
      'template parsing error: template: :1:2: executing "" at <join>: wrong number of args for join: want 2 got 1',
    );
    assertFails(
      () => run('{{truncate .Name "x"}}', inspect),
      'template parsing error: template: :1:17: executing "" at <"x">: expected integer; found "x"',
    );
    assertFails(
      () => run('{{upper .State.Pid}}', inspect),
      'template parsing error: template: :1:14: executing "" at <.State.Pid>: wrong type for value; expected string; got int',
    );
    assertFails(
      () => run('{{range .Name}}x{{end}}', inspect),
      'template parsing error: template: :1:8: executing "" at <.Name>: range can\'t iterate over /web',
    );
  });

  it('with missingkey=error fails on an absent map key, as docker inspect does', () => {
    assertFails(
      () => run('{{.State.Foo}}', inspect, { missingKey: 'error' }),
      'template parsing error: template: :1:8: executing "" at <.State.Foo>: map has no entry for key "Foo"',
    );
    assert.equal(run('{{.State.Status}}', inspect, { missingKey: 'error' }), 'running');
    assert.equal(run('[{{.Labels.x}}]', { Labels: { a: 'b' } }, { missingKey: 'zero' }), '[]');
  });

  it('keeps the output written before an error', () => {
    const r = compileTemplate('a{{.X}}b{{nil}}c').executePartial({ X: 1 });
    assert.equal(r.output, 'a1b');
    assert.ok(r.error instanceof InvalidArgument);
  });
});
