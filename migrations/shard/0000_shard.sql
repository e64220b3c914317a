CREATE TABLE `account_settings` (
	`user_id` integer PRIMARY KEY NOT NULL,
	`read_receipts` integer NOT NULL,
	`version` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `attachments` (
	`id` integer PRIMARY KEY NOT NULL,
	`uploader_id` integer NOT NULL,
	`conversation_id` integer NOT NULL,
	`size` integer,
	`created_at` text NOT NULL,
	`used_by_message_id` integer
);
--> statement-breakpoint
CREATE INDEX `attachments_used_by_idx` ON `attachments` (`used_by_message_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `conversations` (
	`id` integer PRIMARY KEY NOT NULL,
	`title` text,
	`created_at` text NOT NULL,
	`last_message_id` integer,
	`last_seq` integer DEFAULT 0 NOT NULL,
	`last_activity_at` text NOT NULL,
	`epoch` integer DEFAULT 1 NOT NULL,
	`rotation_needed` integer DEFAULT false NOT NULL,
	`message_ttl_seconds` integer
);
--> statement-breakpoint
CREATE TABLE `daily_bytes` (
	`user_id` integer NOT NULL,
	`day` text NOT NULL,
	`bytes` integer NOT NULL,
	PRIMARY KEY(`user_id`, `day`)
);
--> statement-breakpoint
CREATE TABLE `devices` (
	`id` integer PRIMARY KEY NOT NULL,
	`user_id` integer NOT NULL,
	`identity_key` blob,
	`signing_key` blob,
	`signature` blob,
	`status` text NOT NULL,
	`created_at` text
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
CREATE TABLE `messages` (
	`id` integer PRIMARY KEY NOT NULL,
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
	`relates_to_id` integer,
	`relates_to_kind` text,
	`expires_at` text,
	FOREIGN KEY (`conversation_id`) REFERENCES `conversations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `messages_conversation_id_idx` ON `messages` (`conversation_id`,`id`);--> statement-breakpoint
CREATE INDEX `messages_expiry_idx` ON `messages` (`conversation_id`,`expires_at`) WHERE "messages"."expires_at" is not null and "messages"."deleted" = 0;--> statement-breakpoint
CREATE INDEX `messages_expiry_time_idx` ON `messages` (`expires_at`) WHERE "messages"."expires_at" is not null and "messages"."deleted" = 0;--> statement-breakpoint
CREATE INDEX `messages_sender_idx` ON `messages` (`sender_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `messages_conversation_seq_unique` ON `messages` (`conversation_id`,`seq`);--> statement-breakpoint
CREATE UNIQUE INDEX `messages_client_message_id_unique` ON `messages` (`conversation_id`,`sender_id`,`client_message_id`);--> statement-breakpoint
CREATE TABLE `participants` (
	`conversation_id` integer NOT NULL,
	`user_id` integer NOT NULL,
	`username` text NOT NULL,
	`joined_at` text NOT NULL,
	`joined_seq` integer DEFAULT 0 NOT NULL,
	`joined_epoch` integer DEFAULT 1 NOT NULL,
	`role` text DEFAULT 'member' NOT NULL,
	`status` text DEFAULT 'member' NOT NULL,
	`added_by` integer,
	`last_read_seq` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`conversation_id`, `user_id`),
	FOREIGN KEY (`conversation_id`) REFERENCES `conversations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `participants_user_idx` ON `participants` (`user_id`);--> statement-breakpoint
CREATE TABLE `sessions` (
	`id` integer PRIMARY KEY NOT NULL,
	`user_id` integer NOT NULL,
	`device_id` integer NOT NULL,
	`ended_at` text
);
--> statement-breakpoint
CREATE INDEX `sessions_device_idx` ON `sessions` (`device_id`);