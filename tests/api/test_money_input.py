"""Money in request bodies is an integer count of minor units: 1000.0, 1e3, "1000" and true are
refused with 422 naming the field, and the message says what is expected."""

from __future__ import annotations

import pytest

from api_kit import SUPPORT_KEY, assert_error
from test_error_messages import assert_our_sentence


@pytest.mark.parametrize("amount", [1000.0, "1000", True, 1e3, 10.5, [1000], {"value": 1000}])
def test_a_refund_amount_must_be_an_integer_of_minor_units(api, amount):
    customer, _ = api.subscribed()
    invoice = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"][0]
    response = api.post("/v1/refunds", {"invoice": invoice["id"], "reason": "goodwill", "amount": amount},
                        key=SUPPORT_KEY)
    error = assert_error(response, 422, "invalid_request", "amount")
    assert_our_sentence(error, "amount", "minor units (cents)")
    assert api.ok("GET", f"/v1/invoices/{invoice['id']}")["amount_refunded"] == 0


def test_a_refund_amount_in_minor_units_is_taken(api):
    customer, _ = api.subscribed()
    invoice = api.ok("GET", f"/v1/invoices?customer={customer['id']}")["data"][0]
    error = assert_error(api.post("/v1/refunds", {"invoice": invoice["id"], "reason": "x", "amount": 0},
                                  key=SUPPORT_KEY), 422, "invalid_request", "amount")
    assert_our_sentence(error, "amount", "more than 0")
    refund = api.ok("POST", "/v1/refunds", {"invoice": invoice["id"], "reason": "goodwill", "amount": 1000},
                    key=SUPPORT_KEY)
    assert refund["amount"] == 1000


def test_money_request_fields_are_all_strict_integers():
    """Every request field that carries money (by its name: amount, amount_off, price) and is
    not a credit amount reads strictly, with the same message."""
    import importlib
    import pkgutil

    from pydantic import ValidationError

    import creditflow.api.schemas as schemas_package
    from creditflow.api.schemas.common import Request

    money_names = {"amount", "amount_off", "price"}
    checked = []
    for info in pkgutil.iter_modules(schemas_package.__path__):
        module = importlib.import_module(f"creditflow.api.schemas.{info.name}")
        for model in vars(module).values():
            if not (isinstance(model, type) and issubclass(model, Request) and model is not Request):
                continue
            for name, field in model.model_fields.items():
                if name not in money_names or "Credits" in repr(field.annotation):
                    continue
                checked.append(f"{model.__name__}.{name}")
                for wrong in (1000.0, "1000", True):
                    with pytest.raises(ValidationError) as refused:
                        model.model_validate({name: wrong})
                    mine = [e for e in refused.value.errors() if tuple(e["loc"][:1]) == (name,)]
                    assert mine and "minor units (cents)" in str(mine[0].get("ctx", {}).get("error")), (
                        model.__name__, name, mine)
    assert "RefundCreate.amount" in checked
