CREATE TABLE `consents` (
	`user_id` integer NOT NULL,
	`peer_id` integer NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`user_id`, `peer_id`),
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`peer_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
ALTER TABLE `participants` ADD `role` text DEFAULT 'member' NOT NULL;--> statement-breakpoint
ALTER TABLE `participants` ADD `status` text DEFAULT 'member' NOT NULL;--> statement-breakpoint
ALTER TABLE `participants` ADD `added_by` integer;