ALTER TABLE `conversations` ADD `message_ttl_seconds` integer;--> statement-breakpoint
ALTER TABLE `messages` ADD `relates_to_id` integer;--> statement-breakpoint
ALTER TABLE `messages` ADD `relates_to_kind` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `expires_at` text;--> statement-breakpoint
CREATE INDEX `messages_expiry_idx` ON `messages` (`conversation_id`,`expires_at`) WHERE "messages"."expires_at" is not null and "messages"."deleted" = 0;--> statement-breakpoint
CREATE INDEX `messages_expiry_time_idx` ON `messages` (`expires_at`) WHERE "messages"."expires_at" is not null and "messages"."deleted" = 0;--> statement-breakpoint
ALTER TABLE `participants` ADD `last_read_seq` integer DEFAULT 0 NOT NULL;