"""The catalog: what is sold (plans, the Free plan, bundles, features) and the policies.

`loader.load_catalog()` reads and validates the YAML file into the frozen `models.Catalog`;
`rules.classify_change()` applies the plan-change rules; `diff.diff_catalogs()` says what a new
file changes and `diff.stranded()` whom it would leave without a plan. All are pure apart from
reading the file.
"""
