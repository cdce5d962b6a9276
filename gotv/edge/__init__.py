"""Outside services: Twilio (sms, the only module that imports twilio), Redis and RQ (queue)."""
