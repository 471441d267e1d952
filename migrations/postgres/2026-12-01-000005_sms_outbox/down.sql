DROP TABLE sms_outbox;
