# SPDX-License-Identifier: Apache-2.0
"""The JSON Schema of the rules file (rules/mqlite-rules.schema.json)
agrees with the loader: every shipped rules file (rules/*.json,
rules/examples/*.json) validates against the schema and passes
`mqlite --check`, and a set of files the loader refuses (new keys and
their bounds among them) is refused by the schema too. Needs
python3-jsonschema (contrib/quickstart installs it)."""

import glob
import json
import os

import jsonschema

import test_rules

SRCDIR = test_rules.SRCDIR
SCHEMA = os.path.join(SRCDIR, "rules", "mqlite-rules.schema.json")


def sqlite_rule(**extra):
    sq = {"table": "t", "columns": {"v": "{payload}"}}
    sq.update(extra)
    return {"rules": [{"name": "r", "topic": "a/#", "sqlite": sq}]}


# Files both the schema and the loader must refuse.
BAD = {
    "max_items without foreach": sqlite_rule(max_items=5),
    "foreach not a payload placeholder": sqlite_rule(foreach="{topic}"),
    "foreach not a string": sqlite_rule(foreach=["{payload}"]),
    "foreach with text around": sqlite_rule(foreach="x{payload.a}"),
    "max_items zero": sqlite_rule(foreach="{payload}", max_items=0),
    "max_items too large": sqlite_rule(foreach="{payload}",
                                       max_items=100001),
    "max_items a fraction": sqlite_rule(foreach="{payload}",
                                        max_items=1.5),
    "webhook max_items without foreach": {"rules": [{
        "name": "r", "topic": "a", "webhook": {
            "url": "http://127.0.0.1:9/", "max_items": 3}}]},
    "mqtt foreach not a placeholder": {"rules": [{
        "name": "r", "topic": "a", "mqtt": {
            "url": "tcp://127.0.0.1:9", "foreach": "readings"}}]},
    "unknown action key": sqlite_rule(for_each="{payload}"),
}

# Files both must accept.
GOOD = {
    "foreach on every action": {"rules": [{
        "name": "r", "topic": "a/{dev}",
        "where": {"value": "{item.v}", "op": ">", "to": 0},
        "sqlite": {"table": "t", "foreach": "{payload.r}",
                   "max_items": 100000,
                   "columns": {"v": "{item.v}", "i": "{item_index}"}},
        "webhook": {"url": "http://127.0.0.1:9/{item_index}",
                    "foreach": "{payload[\"r\"]}", "max_items": 1},
        "mqtt": {"url": "tcp://127.0.0.1:9", "foreach": "{payload}",
                 "topic": "up/{dev}/{item.a[0].b}"}}]},
}


class TestRulesSchema(test_rules.RulesCase):

    def setUp(self):
        super().setUp()
        with open(SCHEMA) as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        self.validator = cls(schema)

    def schema_errors(self, doc):
        return [e.message for e in self.validator.iter_errors(doc)]

    def loader_verdict(self, doc, name):
        path = self.rules_file(doc, name + ".json")
        rc, lines = self.check("-r", path, "-d",
                               os.path.join(self.workdir, "never.db"))
        return rc, lines

    def test_shipped_files_match_the_schema_and_load(self):
        files = sorted(glob.glob(os.path.join(SRCDIR, "rules", "*.json")) +
                       glob.glob(os.path.join(SRCDIR, "rules", "examples",
                                              "*.json")))
        files = [f for f in files if f != SCHEMA]
        self.assertGreaterEqual(len(files), 6, files)
        # examples/webhook.json takes a token from the environment.
        os.environ["HOOK_TOKEN"] = "t0ken"
        self.addCleanup(os.environ.pop, "HOOK_TOKEN", None)
        for f in files:
            with open(f) as fh:
                doc = json.load(fh)
            self.assertEqual(self.schema_errors(doc), [], f)
            rc, lines = self.check("-r", f, "-d",
                                   os.path.join(self.workdir, "never.db"))
            self.assertEqual(rc, 0, "%s:\n%s" % (f, "\n".join(lines)))

    def test_schema_and_loader_refuse_the_same_files(self):
        for i, (what, doc) in enumerate(sorted(BAD.items())):
            self.assertNotEqual(self.schema_errors(doc), [],
                                "schema accepts: " + what)
            rc, lines = self.loader_verdict(doc, "bad%d" % i)
            self.assertEqual(rc, 1, "loader accepts: %s\n%s"
                             % (what, "\n".join(lines)))
        for i, (what, doc) in enumerate(sorted(GOOD.items())):
            self.assertEqual(self.schema_errors(doc), [], what)
            rc, lines = self.loader_verdict(doc, "good%d" % i)
            self.assertEqual(rc, 0, "%s\n%s" % (what, "\n".join(lines)))
