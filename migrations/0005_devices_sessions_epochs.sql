-- Contract v2 is a clean break (nothing deployed): v1 rows have no account key, devices or epochs.
-- Hand-edited: these deletes, and the copies of old rows into the rebuilt tables are left out.
DELETE FROM `attachments`;--> statement-breakpoint
DELETE FROM `daily_bytes`;--> statement-breakpoint
DELETE FROM `push_subscriptions`;--> statement-breakpoint
DELETE FROM `inbox_presence`;--> statement-breakpoint
DELETE FROM `blocks`;--> statement-breakpoint
DELETE FROM `messages`;--> statement-breakpoint
DELETE FROM `participants`;--> statement-breakpoint
DELETE FROM `conversations`;--> statement-breakpoint
DELETE FROM `users`;--> statement-breakpoint
CREATE TABLE `devices` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`user_id` integer NOT NULL,
	`name` text NOT NULL,
	`identity_key` blob NOT NULL,
	`signing_key` blob NOT NULL,
	`signature` blob,
	`status` text NOT NULL,
	`provisioning` blob,
	`created_at` text NOT NULL,
	`last_seen_at` text,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `devices_user_idx` ON `devices` (`user_id`,`status`);--> statement-breakpoint
CREATE TABLE `epoch_keys` (
	`conversation_id` integer NOT NULL,
	`epoch` integer NOT NULL,
	`device_id` integer NOT NULL,
	`wrapped_key` blob NOT NULL,
	`signature` blob NOT NULL,
	`wrapped_by_user` integer NOT NULL,
	`wrapped_by_device` integer NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`conversation_id`, `epoch`, `device_id`),
	FOREIGN KEY (`conversation_id`) REFERENCES `conversations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `epoch_keys_device_idx` ON `epoch_keys` (`device_id`);--> statement-breakpoint
CREATE TABLE `epochs` (
	`conversation_id` integer NOT NULL,
	`epoch` integer NOT NULL,
	`created_by` integer NOT NULL,
	`created_by_device` integer NOT NULL,
	`commit_id` text NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`conversation_id`, `epoch`),
	FOREIGN KEY (`conversation_id`) REFERENCES `conversations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `refresh_tokens` (
	`hash` blob PRIMARY KEY NOT NULL,
	`session_id` integer NOT NULL,
	`expires_at` text NOT NULL,
	`used_at` text,
	FOREIGN KEY (`session_id`) REFERENCES `sessions`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `refresh_tokens_session_idx` ON `refresh_tokens` (`session_id`);--> statement-breakpoint
CREATE TABLE `sessions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`user_id` integer NOT NULL,
	`device_id` integer NOT NULL,
	`created_at` text NOT NULL,
	`last_used_at` text NOT NULL,
	`ended_at` text,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`device_id`) REFERENCES `devices`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `sessions_user_idx` ON `sessions` (`user_id`);--> statement-breakpoint
CREATE INDEX `sessions_device_idx` ON `sessions` (`device_id`);--> statement-breakpoint
CREATE TABLE `socket_tickets` (
	`hash` blob PRIMARY KEY NOT NULL,
	`session_id` integer NOT NULL,
	`token_exp` integer NOT NULL,
	`expires_at` text NOT NULL,
	FOREIGN KEY (`session_id`) REFERENCES `sessions`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_messages` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`conversation_id` integer NOT NULL,
	`seq` integer NOT NULL,
	`sender_id` integer NOT NULL,
	`sender_username` text,
	`sender_device_id` integer NOT NULL,
	`key_epoch` integer NOT NULL,
	`nonce` blob,
	`ciphertext` blob,
	`auth_tag` blob,
	`associated_data` blob,
	`signature` blob,
	`client_message_id` text,
	`deleted` integer DEFAULT false NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`conversation_id`) REFERENCES `conversations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
DROP TABLE `messages`;--> statement-breakpoint
ALTER TABLE `__new_messages` RENAME TO `messages`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `messages_conversation_id_idx` ON `messages` (`conversation_id`,`id`);--> statement-breakpoint
CREATE INDEX `messages_sender_idx` ON `messages` (`sender_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `messages_conversation_seq_unique` ON `messages` (`conversation_id`,`seq`);--> statement-breakpoint
CREATE UNIQUE INDEX `messages_client_message_id_unique` ON `messages` (`conversation_id`,`sender_id`,`client_message_id`);--> statement-breakpoint
CREATE TABLE `__new_participants` (
	`conversation_id` integer NOT NULL,
	`user_id` integer NOT NULL,
	`username` text NOT NULL,
	`joined_at` text NOT NULL,
	`joined_seq` integer DEFAULT 0 NOT NULL,
	`joined_epoch` integer DEFAULT 1 NOT NULL,
	PRIMARY KEY(`conversation_id`, `user_id`),
	FOREIGN KEY (`conversation_id`) REFERENCES `conversations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
DROP TABLE `participants`;--> statement-breakpoint
ALTER TABLE `__new_participants` RENAME TO `participants`;--> statement-breakpoint
CREATE INDEX `participants_user_idx` ON `participants` (`user_id`);--> statement-breakpoint
ALTER TABLE `conversations` ADD `epoch` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `conversations` ADD `rotation_needed` integer DEFAULT false NOT NULL;--> statement-breakpoint
-- Hand-edited: SQLite cannot add a NOT NULL column without a default; the table is empty here.
ALTER TABLE `users` ADD `account_key` blob NOT NULL DEFAULT x'';--> statement-breakpoint
ALTER TABLE `users` ADD `read_receipts` integer DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE `users` DROP COLUMN `public_key`;