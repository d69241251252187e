-- The customer's address (the email claim of the token that placed the order): every order event carries it, so the
-- notification service emails the customer without a lookup of its own. Orders placed before this stay without one.
ALTER TABLE oms.orders ADD COLUMN customer_email text CHECK (length(customer_email) BETWEEN 3 AND 254);
