CREATE TABLE `attachments` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`uploader_id` integer NOT NULL,
	`conversation_id` integer NOT NULL,
	`size` integer,
	`created_at` text NOT NULL,
	`used_by_message_id` integer
);
--> statement-breakpoint
CREATE INDEX `attachments_used_by_idx` ON `attachments` (`used_by_message_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `daily_bytes` (
	`user_id` integer NOT NULL,
	`day` text NOT NULL,
	`bytes` integer NOT NULL,
	PRIMARY KEY(`user_id`, `day`)
);
--> statement-breakpoint
CREATE TABLE `push_subscriptions` (
	`device_id` integer PRIMARY KEY NOT NULL,
	`endpoint` text NOT NULL,
	`p256dh` blob NOT NULL,
	`auth` blob NOT NULL,
	`created_at` text NOT NULL,
	`last_push_at` text
);
