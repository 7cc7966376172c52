"""The catalog: what is sold (plans, the Free plan, bundles, features) and the policies.

`loader.load_catalog()` reads and validates the YAML file into the frozen `models.Catalog`;
`rules.classify_change()` applies the plan-change rules. Both are pure apart from reading the
file.
"""
