"""Webhooks to the customer (a session's ``callback_url``) and to the operator, one mechanism for both.

- ``events.py``: the event names and their typed payloads (``payment.credited``, ``balance.low``,
  ``session.expiring``, ``call.refunded``, ``withdrawal.completed``/``withdrawal.failed``).
- ``signing.py``: Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``) through the ``standardwebhooks`` library, and ``whsec_`` secrets.
- ``subscriptions.py``: a session's callback URL, secret and balance threshold.
- ``delivery.py``: the ``webhook_deliveries`` queue: at least once, retries with exponential
  backoff, claims so several instances deliver each row once, redelivery, the delivery log.
- ``service.py``: ``Webhooks``, what the rest of the gateway calls when something happens.

Imports point down: ``webhooks`` -> ``outbound``, ``db``; ``api``, ``admin`` and ``app`` use it.
"""
