// Runs the real Cube client against a server and prints what it got, as JSON, for
// tests/server/cube/test_client.py to compare with /v1/query answers.
//
// node run.mjs PLAN.json, where the plan is
//   {"apiUrl": "...", "token": "...", "steps": [{"name", "kind": "load"|"meta"|"dryRun"|"sql",
//    "query": {...}, "token"?: "..."}]}
// Prints {"<name>": {...}} with, for a load, rawData(), tablePivot(), chartPivot(), series(),
// the raw response and its annotation; for an error, {"error", "status"}.
import { readFileSync } from 'node:fs';
import cube from '@cubejs-client/core';

const plan = JSON.parse(readFileSync(process.argv[2], 'utf8'));

async function run(step) {
  const api = cube(step.token ?? plan.token, { apiUrl: plan.apiUrl });
  try {
    if (step.kind === 'load') {
      const resultSet = await api.load(step.query);
      // several results (compareDateRange, blending) are read one by one, as the client wants
      const parts = resultSet.queryType === 'regularQuery' ? [resultSet] : resultSet.decompose();
      return {
        queryType: resultSet.queryType,
        rawData: parts.length === 1 ? parts[0].rawData() : parts.map((p) => p.rawData()),
        tablePivot: resultSet.tablePivot(),
        chartPivot: resultSet.chartPivot(),
        series: resultSet.series(),
        tableColumns: resultSet.tableColumns().map((c) => c.key),
        annotation: parts.map((p) => p.annotation()),
        response: resultSet.serialize().loadResponse,
      };
    }
    if (step.kind === 'meta') {
      const meta = await api.meta();
      return {
        cubes: meta.meta.cubes,
        measures: meta.membersForQuery(null, 'measures').map((m) => m.name),
        dimensions: meta.membersForQuery(null, 'dimensions').map((m) => m.name),
        resolved: meta.resolveMember(step.member, 'measures').title,
      };
    }
    if (step.kind === 'dryRun') {
      return await api.dryRun(step.query);
    }
    if (step.kind === 'sql') {
      const sql = await api.sql(step.query);
      return { sql: sql.sql(), raw: sql.rawQuery() };
    }
    throw new Error(`unknown step kind ${step.kind}`);
  } catch (error) {
    return { error: String(error.message ?? error), status: error.status ?? null };
  }
}

const out = {};
for (const step of plan.steps) {
  out[step.name] = await run(step);
}
process.stdout.write(JSON.stringify(out));
