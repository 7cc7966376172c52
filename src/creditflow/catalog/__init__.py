"""The catalog: what is sold (plans, the Free plan, bundles, features) and the policies.

`load_catalog()` reads and validates the YAML file; `classify_change()` applies the plan-change
rules. Both are pure apart from reading the file.
"""

from creditflow.catalog.loader import (
    CATALOG_ENV_VAR,
    CatalogError,
    check_catalog,
    default_catalog_path,
    load_catalog,
    load_catalog_text,
)
from creditflow.catalog.models import (
    FREE_PLAN_CODE,
    TIMINGS,
    Bundle,
    Catalog,
    ChangeRule,
    Feature,
    FreePlan,
    Plan,
    Policies,
    RefundPolicy,
)
from creditflow.catalog.rules import ChangeDecision, classify_change

__all__ = [
    "CATALOG_ENV_VAR",
    "FREE_PLAN_CODE",
    "TIMINGS",
    "Bundle",
    "Catalog",
    "CatalogError",
    "ChangeDecision",
    "ChangeRule",
    "Feature",
    "FreePlan",
    "Plan",
    "Policies",
    "RefundPolicy",
    "check_catalog",
    "classify_change",
    "default_catalog_path",
    "load_catalog",
    "load_catalog_text",
]
