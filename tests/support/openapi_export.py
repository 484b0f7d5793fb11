"""Write the portal API's OpenAPI document, generated from the code, to functions/connectors/openapi.json."""

from __future__ import annotations

import os

from tests.support.functions import ROOT, load_handler


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    module = load_handler("connectors")
    document: str = module.openapi.document()
    target = ROOT / "functions" / "connectors" / "openapi.json"
    target.write_text(document)
    print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
