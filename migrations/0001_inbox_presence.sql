CREATE TABLE `inbox_presence` (
	`user_id` integer PRIMARY KEY NOT NULL,
	`online` integer NOT NULL,
	`version` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
