-- sqlite.sql: an in-memory SQLite database, a real program run under LD_PRELOAD as
--   sqlite3 :memory: < sqlite.sql
-- Stresses the allocator as SQLite uses it: page cache pages (malloc'd one by one), B-tree
-- cursors, prepared statements, sorter buffers and many short strings. Builds tables with a
-- recursive CTE, adds indexes, updates, deletes and re-inserts rows, then runs queries whose
-- output is fully ordered, so it is identical under any allocator.
PRAGMA cache_size = -262144;
PRAGMA temp_store = MEMORY;

CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL, score INTEGER);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, item TEXT NOT NULL,
                     quantity INTEGER NOT NULL, price INTEGER NOT NULL, note TEXT);

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
INSERT INTO customer (id, name, city, score)
SELECT i, 'customer-' || i || '-' || substr('abcdefghijklmnopqrstuvwxyz', 1 + i % 26, 1 + i % 13),
       'city' || (i * 7919 % 97), (i * 2654435761) % 1000
FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
INSERT INTO orders (id, customer_id, item, quantity, price, note)
SELECT i, 1 + (i * 48271) % 40000, 'item-' || (i * 16807 % 5000), 1 + i % 9, 100 + (i * 69621) % 9900,
       CASE WHEN i % 5 = 0 THEN printf('%.*c', 20 + i % 300, 'n') ELSE NULL END
FROM n;

CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE INDEX orders_by_item ON orders (item, price);
CREATE INDEX customer_by_city ON customer (city, score);

UPDATE orders SET price = price + 7, note = coalesce(note, '') || 'u' WHERE id % 3 = 0;
UPDATE customer SET score = score / 2, name = upper(name) WHERE city IN ('city1', 'city2', 'city3', 'city50');
DELETE FROM orders WHERE id % 7 = 0;
DELETE FROM customer WHERE id % 11 = 0;
DELETE FROM orders WHERE customer_id NOT IN (SELECT id FROM customer);

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
INSERT INTO orders (id, customer_id, item, quantity, price, note)
SELECT 300000 + i, 1 + (i * 31) % 39000, 'item-' || (i % 777), 1 + i % 4, 500 + i % 1000, hex(randomblob(0))
FROM n WHERE (1 + (i * 31) % 39000) % 11 <> 0;

.mode list
.separator |
SELECT 'customers', count(*), sum(score) FROM customer;
SELECT 'orders', count(*), sum(quantity * price), sum(length(note)) FROM orders;
SELECT 'top cities';
SELECT c.city, count(*) AS orders, sum(o.quantity * o.price) AS revenue
FROM orders o JOIN customer c ON c.id = o.customer_id
GROUP BY c.city ORDER BY revenue DESC, c.city LIMIT 10;
SELECT 'top items';
SELECT item, count(*), max(price), min(price) FROM orders GROUP BY item ORDER BY count(*) DESC, item LIMIT 10;
SELECT 'best customers';
SELECT c.id, c.name, sum(o.quantity) AS q FROM customer c JOIN orders o ON o.customer_id = c.id
GROUP BY c.id ORDER BY q DESC, c.id LIMIT 10;
SELECT 'string work', count(DISTINCT group_concat_len) FROM
  (SELECT length(group_concat(item, ',')) AS group_concat_len FROM orders GROUP BY customer_id);
SELECT 'window', sum(r) FROM
  (SELECT rank() OVER (PARTITION BY city ORDER BY score DESC, id) AS r FROM customer) WHERE r <= 3;
SELECT 'sorted sample';
SELECT id, item, price FROM orders ORDER BY item DESC, price, id LIMIT 5 OFFSET 1000;
