-- ELQ's default colours were weak on a TV (Готовится "gray" with white text is 4:1, Готов a pale pink). Installs
-- that still have them get colours with strong contrast; a colour an admin chose is kept.
UPDATE statuses SET color = '#334155' WHERE id = 1 AND color = 'gray';
UPDATE statuses SET color = '#15803d' WHERE id = 2 AND color = '#d9b9b6';
