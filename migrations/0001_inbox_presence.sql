CREATE TABLE `inbox_presence` (
	`user_id` integer PRIMARY KEY NOT NULL,
	`online` integer NOT NULL,
	`version` integer NOT NULL
);
