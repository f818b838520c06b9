"""``python -m examples.acme``: serve acme on 127.0.0.1 and print curl examples."""

from __future__ import annotations

import os

from .app import create_app

EXAMPLES = """
acme is running on {base} (Ctrl-C stops it). Demo users: alice/alice-pass (employee,
manager of store 1, policy admin), bob/bob-pass (employee, manager of store 2), carol/carol-pass
(auditor). Policy: {rules} rules in examples/acme/instance/acme.db (SQLite, seeded from policy.csv).

  curl -i {base}/                                           # 200 OPEN
  curl -i {base}/store                                      # 401 no credentials
  curl -i -u bob:wrong {base}/store                         # 401 wrong password
  curl -i -u bob:bob-pass {base}/store                      # 200 employee
  curl -i -u carol:carol-pass {base}/store                  # 403 not an employee
  curl -i -u alice:alice-pass -d product=apple -d quantity=3 {base}/store/1   # 200 manager of 1
  curl -i -u bob:bob-pass -d product=apple -d quantity=3 {base}/store/1       # 403 not manager of 1
  curl -i -u alice:alice-pass -d product=apple -d quantity=lots {base}/store/1 # 400 bad quantity
  curl -i -u alice:alice-pass -X PUT -H 'Content-Type: application/json' -d '{{"lines": [{{"product": "fig", "quantity": 5}}]}}' {base}/store/1/stock  # 200 typed JSON body
  curl -i -u alice:alice-pass -X PUT -H 'Content-Type: application/json' -d '{{"lines": [{{"product": "fig", "quantity": 0}}]}}' {base}/store/1/stock  # 400 invalid line
  curl -i -u carol:carol-pass '{base}/reports?day=2026-11-22'  # 200 ROUTE allowed for auditors
  curl -i -u bob:bob-pass {base}/reports                    # 403 ROUTE denied
  curl -i -u alice:alice-pass -X DELETE {base}/store/1      # 403 CLOSE
  curl -i -u alice:alice-pass {base}/guard/roles/bob        # 200 admin API (alice is policy_admin)
  curl -i -u bob:bob-pass {base}/guard/policies             # 403 admin API for admins only
  curl -i -c acme.cookies -H 'Content-Type: application/json' -d '{{"login": "bob", "password": "bob-pass"}}' {base}/auth/login  # 200 session cookie + csrf_token
  curl -i -b acme.cookies {base}/store                      # 200 by session cookie
  curl -i -b acme.cookies -X POST {base}/auth/logout        # 403 cookie requests need X-CSRF-Token
  curl -i -H 'Content-Type: application/json' -d '{{"login": "bob", "password": "bob-pass"}}' {base}/auth/token  # 200 access + refresh tokens
  TOKEN=$(curl -s -u alice:alice-pass -X POST {base}/login | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -i -H "Authorization: Bearer $TOKEN" {base}/whoami   # 200 with a JWT
"""


def main() -> None:
    host = "127.0.0.1"
    port = int(os.environ.get("ACME_PORT", "5000"))
    app = create_app()
    with app.app_context():  # load (and on first start, seed) the policy now, not at a request
        rules = len(app.guard.policies.list())
    print(EXAMPLES.format(base=f"http://{host}:{port}", rules=rules), flush=True)
    app.run(host=host, port=port, threaded=True)


if __name__ == "__main__":
    main()
