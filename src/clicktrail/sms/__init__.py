"""SMS providers (adapters behind `services.ports.SmsProvider`)."""
